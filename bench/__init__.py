"""Benchmarks: scripts that print tables (`make bench`), never assertions."""

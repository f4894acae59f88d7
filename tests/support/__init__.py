"""Helpers the test suites and the benchmarks share, each written once."""

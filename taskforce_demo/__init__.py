"""Deterministic data and analysis that let `taskforce demo` run without any outside input."""

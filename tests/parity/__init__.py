"""Parity of taskforce with deepagents: each scenario run both ways and compared."""

import pytest

# The comparisons live in the harness, not in test modules: have pytest show their diffs.
pytest.register_assert_rewrite("tests.parity.harness")

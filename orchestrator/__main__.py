"""`python -m orchestrator` is the `taskforce` command."""

from orchestrator.cli import main

main()

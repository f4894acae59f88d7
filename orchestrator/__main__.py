"""`python -m orchestrator` is the `taskforce` command."""

from orchestrator.cli.app import main

main()

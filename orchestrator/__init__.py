"""The main-agent side: builds the deep agent, sends delegations, runs the CLI."""

from orchestrator.agent import create_orchestrator

__all__ = ["create_orchestrator"]

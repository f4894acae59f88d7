"""What the orchestrator and the workers both stand on: settings, wire schemas, the Celery app,
the shared files, models and the subagent registry. It imports neither side."""

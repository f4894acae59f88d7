"""The worker side: Celery tasks that rebuild a subagent from the registry and run one delegation."""

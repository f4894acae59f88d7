"""Delegations on their way out: a `task` tool call made a `Delegation` (`building`), sent over
Celery and waited for (`client`), the `task` tool itself (`task_tool`) with the replay of a
worker's steps into the caller's stream (`stream`), and deepagents' async-task tools
(`async_tasks`)."""

"""Delegations on their way out: a `task` tool call made a `Delegation` (`building`), recorded and
published (`publishing`) under the cap on how many are out at once (`slots`), waited for by the
client (`client`) as its listener pops the pushed reports (`listener`) and checks what no push
can tell (`checks`); the `task` tool itself (`task_tool`), the replay of a worker's steps into
the caller's stream (`stream`), and deepagents' async-task tools (`async_tasks`)."""

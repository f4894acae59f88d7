"""Every Redis key taskforce writes, by family, under the deployment's prefix
(`TASKFORCE_QUEUE_PREFIX`, `taskforce` unless set).

One module, so that what a deployment keeps in Redis can be read in one place, by an operator
scanning a prefix as much as by `taskforce prune` (`orchestrator.upkeep.prune`), whose table
must list every family here (a test fails if one is missing). Each family's owner (named below)
decides what the key holds and how long it lives; the shared files (`shared/files/redis.py`) keep
their own scheme under the files' namespace and are not listed here."""

from __future__ import annotations


def delegation(prefix: str, delegation_id: str) -> str:
    """The ledger's record of one delegation, a hash (`shared.ledger`)."""
    return f"{prefix}:dlg:{delegation_id}"


def leases(prefix: str) -> str:
    """Running delegations by lease expiry, a sorted set (`shared.ledger`)."""
    return f"{prefix}:leases"


def dead_letters(prefix: str) -> str:
    """Dead-lettered delegations by time, a sorted set (`shared.ledger`)."""
    return f"{prefix}:dead"


def inbox(prefix: str, client_id: str) -> str:
    """The reports pushed to one waiting orchestrator process, a list (`shared.ledger`)."""
    return f"{prefix}:inbox:{client_id}"


def serving(prefix: str, queue: str) -> str:
    """The workers serving a queue, by last announcement, a sorted set (`shared.ledger`)."""
    return f"{prefix}:serving:{queue}"


def progress(prefix: str, delegation_id: str) -> str:
    """A running delegation's steps, a stream (`shared.progress`)."""
    return f"{prefix}:progress:{delegation_id}"


def trace(prefix: str, delegation_id: str) -> str:
    """Where a delegation's LangSmith run hangs in its caller's trace (`shared.tracing`)."""
    return f"{prefix}:trace:{delegation_id}"


def metrics(prefix: str, process: str) -> str:
    """One process's counts, a hash (`shared.metrics`)."""
    return f"{prefix}:metrics:{process}"


def budget(prefix: str, budget_key: str) -> str:
    """What a budget has spent, a hash (`shared.budgets`)."""
    return f"{prefix}:budget:{budget_key}"


def model_limit(prefix: str, bucket: str, part: str) -> str:
    """One part of a model limit's bucket: slots, requests, tokens, ... (`shared.rate_limiter`)."""
    return f"{prefix}:limits:{bucket}:{part}"


def paused_run(prefix: str, thread_id: str, part: str) -> str:
    """A paused subagent's checkpoints, writes or latest checkpoint (`workers.paused_runs`)."""
    return f"{prefix}:paused:{thread_id}:{part}"


def conversation(prefix: str, task_id: str) -> str:
    """An async subagent task's conversation (`workers.conversations`)."""
    return f"{prefix}:conversation:{task_id}"


def store(prefix: str) -> str:
    """The prefix of the deployment's long-term store (`shared.stores`)."""
    return f"{prefix}:store"


def batch(prefix: str, batch_id: str, part: str = "") -> str:
    """A submitted batch: its meta hash, or its `states`, `results` or `rejected`
    (`orchestrator.batch.submissions`)."""
    return f"{prefix}:batch:{batch_id}" + (f":{part}" if part else "")


def subagent_queue(prefix: str, subagent_type: str) -> str:
    """The Celery queue of one subagent type (or of the `queue` a spec names), a list kombu keeps;
    a dot, so that pools can be sized and placed per type (`shared.celery_app`)."""
    return f"{prefix}.{subagent_type}"


def main_runs_queue(prefix: str) -> str:
    """The queue of submitted main runs. A colon, which queue names of subagent types
    (`<prefix>.<name>`) never contain (`orchestrator.batch.submissions`)."""
    return f"{prefix}:main-runs"

"""`taskforce prune`: every kind of state taskforce keeps, how long each lives, and one place
that deletes what outlived its use.

Most state expires by itself: Redis drops a reported delegation's record, its progress stream,
a batch's bookkeeping and the rest after their TTLs. What nothing expires is pruned here, once
untouched for `older_than_s`: the main agent's checkpoints (SQLite or PostgreSQL, one thread per
run or batch item), dead letters, run workspaces on S3 or `file://`, and any key of a family that
should expire but lost its TTL. Long-term memory (`/memories/`, the store's items without a TTL)
is listed and never pruned: it is meant to outlive every run.

A survey and a prune are the same walk; a dry run deletes nothing, so what it lists is what a
prune would delete."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis

from orchestrator.checkpoints import checkpoints_file, checkpoints_location, open_checkpointer
from orchestrator.embedded import keep_files, kept_files_root
from shared import keys
from shared.budgets import BUDGET_TTL_S
from shared.compat.langgraph import thread_ids
from shared.files import shared_files
from shared.ledger import INBOX_TTL_S, KOMBU_UNACKED, as_text, open_ledger
from shared.metrics import COUNTS_TTL_S
from shared.settings import Settings
from shared.stores import SharedStore
from shared.timing import PAUSE_TTL_S
from shared.urls import mask_url

DEFAULT_OLDER_THAN_S = 7 * 86400

_FOREVER = "kept until deleted"

_CHUNK = 500
"""Keys looked at per round trip."""

# KEYS[1]: the dead letters' set; then candidate keys. ARGV: idle seconds, '1' to delete, then
# for each candidate the delegation id it records ('' if none). A key counts when it has no TTL,
# nobody touched it for the idle seconds, and it is not a dead letter (kept on purpose). TTL,
# OBJECT and ZSCORE do not touch a key, so a dry run does not postpone a prune.
_NO_EXPIRY = """
local found = 0
for index = 2, #KEYS do
  local key = KEYS[index]
  if redis.call('TTL', key) == -1 then
    local idle = redis.pcall('OBJECT', 'IDLETIME', key)
    local id = ARGV[index + 1]
    local dead = id ~= '' and redis.call('ZSCORE', KEYS[1], id)
    if type(idle) == 'number' and idle >= tonumber(ARGV[1]) and not dead then
      found = found + 1
      if ARGV[2] == '1' then redis.call('DEL', key) end
    end
  end
end
return found
"""


@dataclass(frozen=True)
class Holding:
    """One kind of state: where it lives, how long it is kept, how much there is, and how much
    of it the prune deleted (or, in a dry run, would delete; None where it never deletes)."""

    kind: str
    store: str
    at: str
    kept: str
    held: int
    pruned: int | None


@dataclass(frozen=True)
class _Family:
    """Redis keys of one kind, found by the prefix their builder in `shared.keys` gives them."""

    kind: str
    start: str
    kept: str
    records_delegations: bool = False

    def delegation_id(self, key: str) -> str:
        return key[len(self.start) :] if self.records_delegations else ""


def survey(
    settings: Settings, older_than_s: float | None = None, *, delete: bool, now: datetime | None = None
) -> list[Holding]:
    """Every kind of state `settings` keep, with what is (or, unless `delete`, would be) pruned.
    `older_than_s` is how long untouched state is kept; unset, workspaces keep theirs
    (`TASKFORCE_FILES_WORKSPACE_TTL`) and everything else `DEFAULT_OLDER_THAN_S`."""
    walk = _Walk(settings, older_than_s, delete, now or datetime.now(UTC))
    holdings = [walk.checkpoints(), *walk.files()]
    if settings.redis_url is not None:
        holdings += walk.in_redis(settings.redis_url)
    return holdings


_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`7d`, `12h`, `90m`, `30s` or plain seconds, as seconds."""
    number, unit = text.strip(), ""
    while number and not number[-1].isdigit():
        number, unit = number[:-1], number[-1] + unit
    if not number.isdigit() or unit.strip().lower() not in _UNITS:
        raise ValueError(f"{text!r} is not a duration: write it as 7d, 12h, 90m, 30s or seconds")
    return int(number) * _UNITS[unit.strip().lower()]


def duration(seconds: float) -> str:
    """`seconds` the way a person says it: 7 d, 12 h, 5 min, 30 s."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


@dataclass(frozen=True)
class _Walk:
    settings: Settings
    older_than_s: float | None
    delete: bool
    now: datetime

    @property
    def age(self) -> float:
        return DEFAULT_OLDER_THAN_S if self.older_than_s is None else self.older_than_s

    def checkpoints(self) -> Holding:
        cutoff = self.now - timedelta(seconds=self.age)
        threads: list[str] = []
        stale = 0
        with contextlib.ExitStack() as opened:
            # A dry run must not leave an empty SQLite file behind where there was none.
            if self.settings.database_url is not None or checkpoints_file(self.settings).exists():
                saver = opened.enter_context(open_checkpointer(self.settings))
                threads = thread_ids(saver)
            for thread_id in threads:
                latest = saver.get_tuple({"configurable": {"thread_id": thread_id}})
                if latest is None or datetime.fromisoformat(latest.checkpoint["ts"]) >= cutoff:
                    continue
                stale += 1
                if self.delete:
                    saver.delete_thread(thread_id)
        engine = "PostgreSQL" if self.settings.database_url is not None else "SQLite"
        return Holding(
            "main-agent checkpoints",
            f"{engine} {checkpoints_location(self.settings)}",
            "threads (runs, batch items)",
            f"pruned {duration(self.age)} after a thread's last step",
            len(threads),
            stale,
        )

    def files(self) -> list[Holding]:
        kept = keep_files(self.settings)
        where = f"shared files {mask_url(kept.files_url or kept.redis_url or '')}"
        age = self.older_than_s if self.older_than_s is not None else self.settings.files_workspace_ttl
        workspaces: list[str] = []
        stale: list[str] = []
        memories = 0
        root = kept_files_root(self.settings)
        # Embedded runs that never used --keep left no folder, which opening the store would create.
        if root is None or root.exists():
            files = shared_files(kept)
            workspaces = files.workspaces()
            if age:
                stale = (
                    files.prune(age, now=self.now)
                    if self.delete
                    else list(files.stale_workspaces(age, now=self.now))
                )
            memories = len(files.store.scope("memories").walk("/"))
        rule = (
            f"pruned {duration(age)} after a run's last write"
            if age
            else "kept (TASKFORCE_FILES_WORKSPACE_TTL=0)"
        )
        return [
            Holding(
                "run workspaces", where, "/runs/<run id>/", rule, len(workspaces), len(stale) if age else None
            ),
            Holding("long-term memory", where, "/memories/", _FOREVER, memories, None),
        ]

    def in_redis(self, url: str) -> list[Holding]:
        ledger = open_ledger(self.settings, riding_out_outages=False)
        client, prefix, where = ledger.client, self.settings.queue_prefix, f"Redis {mask_url(url)}"
        holdings = []
        for family, family_keys in _found_by_family(client, prefix, _families(self.settings)).items():
            stale = self._without_expiry(client, family, family_keys)
            holdings.append(
                Holding(family.kind, where, f"{family.start}*", family.kept, len(family_keys), stale)
            )
        parked = ledger.dead_letter_ids()
        old = ledger.dead_letter_ids(parked_for_s=self.age)
        if self.delete:
            for delegation_id in old:
                ledger.drop_dead(delegation_id)
        return [
            *holdings,
            Holding(
                "dead letters",
                where,
                keys.dead_letters(prefix),
                f"until requeued or dropped; pruned {duration(self.age)} after parking",
                len(parked),
                len(old),
            ),
            Holding(
                "leases of running work",
                where,
                keys.leases(prefix),
                "while running; any sweeper hands a lapsed one on",
                int(client.zcard(keys.leases(prefix))),
                None,
            ),
            *self._store(where),
            *_queues(client, prefix, where),
        ]

    def _without_expiry(self, client: redis.Redis, family: _Family, family_keys: list[str]) -> int:
        dead = keys.dead_letters(self.settings.queue_prefix)
        found = 0
        for start in range(0, len(family_keys), _CHUNK):
            chunk = family_keys[start : start + _CHUNK]
            arguments: list[str | int] = [int(self.age), int(self.delete)]
            arguments += [family.delegation_id(key) for key in chunk]
            found += int(client.eval(_NO_EXPIRY, 1 + len(chunk), dead, *chunk, *arguments))
        return found

    def _store(self, where: str) -> list[Holding]:
        store = SharedStore.from_settings(self.settings)
        census = store.census()
        swept = store.sweep() if self.delete else census.due
        at, forever = f"{store.prefix}:*", census.items - census.expiring
        return [
            Holding("store items with a TTL", where, at, "until their TTL runs out", census.expiring, swept),
            Holding("store items without a TTL", where, at, _FOREVER, forever, None),
        ]


def _families(settings: Settings) -> list[_Family]:
    """The families whose every key carries a TTL; a key found without one is a leftover."""
    prefix, reports = settings.queue_prefix, duration(settings.result_expires)

    def start(build: Callable[..., str], ids: int = 1) -> str:
        """The part of a key its builder writes before the first id."""
        return build(prefix, *(["\0"] * ids)).split("\0")[0]

    return [
        _Family(
            "delegation records",
            start(keys.delegation),
            f"{reports} after the report (TASKFORCE_RESULT_EXPIRES); dead letters until dropped",
            records_delegations=True,
        ),
        _Family("report inboxes", start(keys.inbox), f"{duration(INBOX_TTL_S)} after the last report"),
        _Family("workers serving a queue", start(keys.serving), "while its workers announce themselves"),
        _Family("progress streams", start(keys.progress), "with the delegation's record"),
        _Family("trace parents", start(keys.trace), "with the delegation's record"),
        _Family("process metrics", start(keys.metrics), f"{duration(COUNTS_TTL_S)} after the last count"),
        _Family("budgets spent", start(keys.budget), f"{duration(BUDGET_TTL_S)} after the last charge"),
        _Family("model limits", start(keys.model_limit, 2), "two minutes after the last call"),
        _Family(
            "paused subagents", start(keys.paused_run, 2), f"{duration(PAUSE_TTL_S)} after the last step"
        ),
        _Family("async task conversations", start(keys.conversation), f"{reports} after the last run"),
        _Family("submitted batches", start(keys.batch), f"{reports} after the batch's last write"),
    ]


def _found_by_family(client: redis.Redis, prefix: str, families: list[_Family]) -> dict[_Family, list[str]]:
    """One scan of the deployment's prefix, each key put with the family it starts like."""
    found: dict[_Family, list[str]] = {family: [] for family in families}
    for raw in client.scan_iter(match=f"{prefix}:*", count=1000):
        key = as_text(raw)
        for family in families:
            if key.startswith(family.start):
                found[family].append(key)
                break
    return found


def _queues(client: redis.Redis, prefix: str, where: str) -> list[Holding]:
    """Messages kombu keeps: waiting in the queues, or delivered and not yet acknowledged."""
    pattern = keys.subagent_queue(prefix, "*")
    queues = [as_text(key) for key in client.scan_iter(match=pattern, _type="list")]
    queues.append(keys.main_runs_queue(prefix))
    with client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue)
        pipe.hlen(KOMBU_UNACKED)
        *lengths, unacked = pipe.execute()
    return [
        Holding(
            "queued messages",
            where,
            f"{pattern}, {keys.main_runs_queue(prefix)}",
            "until taken; one past its queue timeout is dropped unrun",
            sum(lengths),
            None,
        ),
        Holding(
            "unacknowledged messages",
            where,
            KOMBU_UNACKED,
            "until acknowledged; a lost worker's come back after the visibility timeout",
            int(unacked),
            None,
        ),
    ]

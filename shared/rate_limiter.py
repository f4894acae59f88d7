"""The pool's model limits, counted in Redis: every worker and main agent asks the same keys.

Each bucket (`shared.model_limits`) has, under `<prefix>:limits:<bucket>:`:

- `slots`: the calls in flight, each leased until a time (sorted set, member the call). A
  process renews the leases of its calls while they run (`SlotRenewer`); a SIGKILLed worker's
  calls stop being renewed, and their slots come back when their leases end.
- `requests` and `tokens`: the calls of the last minute by when they started; `counts` holds
  each call's tokens, estimated when it starts and corrected from the provider's usage when it
  ends. A sliding window, so no minute, wherever it starts, holds more than the cap.
- `cooldown` and `shrink`: a 429 pauses the bucket for its `Retry-After` and halves its caps
  for `SHRINK_S` (at most once per pause), since the provider counts what the limits do not
  (other clients of the key, a cap set too high).

Admission is one script over every bucket of a call: the call is admitted in all of them or in
none, so a call never holds a slot of one bucket while waiting for another. Time is the Redis
server's, the one clock every machine shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis

from shared import keys
from shared.model_limits import ModelLimit

logger = logging.getLogger(__name__)

WINDOW_MS = 60_000
SHRINK_S = 60.0
"""How long a 429 keeps a bucket's caps halved."""
SHRINK_FLOOR = 0.125
MAX_POLL_S = 0.5
"""The longest a waiting call sleeps before asking again; a freed slot is found this soon."""
_PARTS = ("slots", "requests", "tokens", "counts", "cooldown", "shrink")

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local call, estimate, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local wait = 0
local buckets = #KEYS / 6
for i = 0, buckets - 1 do
  local slots, requests, tokens, counts, cooldown, shrink =
    KEYS[i*6+1], KEYS[i*6+2], KEYS[i*6+3], KEYS[i*6+4], KEYS[i*6+5], KEYS[i*6+6]
  local conc, rpm, tpm = tonumber(ARGV[4+i*3]), tonumber(ARGV[5+i*3]), tonumber(ARGV[6+i*3])
  local factor = tonumber(redis.call('GET', shrink) or '1')
  local paused = tonumber(redis.call('GET', cooldown) or '0')
  if paused > now then wait = math.max(wait, paused - now) end
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
    if redis.call('ZCARD', slots) >= math.max(1, math.floor(conc * factor)) then
      wait = math.max(wait, tonumber(ARGV[#ARGV]))
    end
  end
  if rpm > 0 then
    redis.call('ZREMRANGEBYSCORE', requests, '-inf', now - 60000)
    local cap = math.max(1, math.floor(rpm * factor))
    local count = redis.call('ZCARD', requests)
    if count >= cap then
      local freeing = redis.call('ZRANGE', requests, count - cap, count - cap, 'WITHSCORES')
      wait = math.max(wait, tonumber(freeing[2]) + 60000 - now)
    end
  end
  if tpm > 0 then
    local old = redis.call('ZRANGEBYSCORE', tokens, '-inf', now - 60000)
    if #old > 0 then
      redis.call('HDEL', counts, unpack(old))
      redis.call('ZREMRANGEBYSCORE', tokens, '-inf', now - 60000)
    end
    local cap = math.max(1, math.floor(tpm * factor))
    local entries = redis.call('ZRANGE', tokens, 0, -1, 'WITHSCORES')
    local used, amounts = 0, {}
    for j = 1, #entries, 2 do
      local amount = tonumber(redis.call('HGET', counts, entries[j]) or '0')
      amounts[#amounts + 1] = amount
      used = used + amount
    end
    if used > 0 and used + estimate > cap then
      local freed = 0
      for j = 1, #entries, 2 do
        freed = freed + amounts[(j + 1) / 2]
        if used - freed + estimate <= cap or used - freed == 0 then
          wait = math.max(wait, tonumber(entries[j + 1]) + 60000 - now)
          break
        end
      end
    end
  end
end
if wait > 0 then return wait end
for i = 0, buckets - 1 do
  local conc, rpm, tpm = tonumber(ARGV[4+i*3]), tonumber(ARGV[5+i*3]), tonumber(ARGV[6+i*3])
  if conc > 0 then
    redis.call('ZADD', KEYS[i*6+1], now + lease, call)
    redis.call('PEXPIRE', KEYS[i*6+1], lease + 60000)
  end
  if rpm > 0 then
    redis.call('ZADD', KEYS[i*6+2], now, call)
    redis.call('PEXPIRE', KEYS[i*6+2], 120000)
  end
  if tpm > 0 then
    redis.call('ZADD', KEYS[i*6+3], now, call)
    redis.call('HSET', KEYS[i*6+4], call, estimate)
    redis.call('PEXPIRE', KEYS[i*6+3], 120000)
    redis.call('PEXPIRE', KEYS[i*6+4], 120000)
  end
end
return 0
"""

_RELEASE = """
local call, used = ARGV[1], tonumber(ARGV[2])
for i = 0, #KEYS / 6 - 1 do
  redis.call('ZREM', KEYS[i*6+1], call)
  if used >= 0 and redis.call('ZSCORE', KEYS[i*6+3], call) then
    redis.call('HSET', KEYS[i*6+4], call, used)
  end
end
return 0
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], lease + 60000)
end
return 0
"""

_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local pause, shrink_ms, floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 0, #KEYS / 2 - 1 do
  local cooldown, shrink = KEYS[i*2+1], KEYS[i*2+2]
  if not redis.call('GET', cooldown) then
    local factor = tonumber(redis.call('GET', shrink) or '1')
    redis.call('SET', shrink, tostring(math.max(floor, factor / 2)), 'PX', shrink_ms)
  end
  local paused = tonumber(redis.call('GET', cooldown) or '0')
  if now + pause > paused then redis.call('SET', cooldown, now + pause, 'PX', pause) end
end
return 0
"""


class CapacityTimeoutError(TimeoutError):
    """A call's deadline came while it waited for the provider's capacity."""


@dataclass(frozen=True)
class Held:
    """A call admitted into its buckets, until it is released."""

    call: str
    buckets: tuple[str, ...]


class PoolLimiter:
    """Admits model calls under the deployment's limits; see the module docstring."""

    def __init__(self, client: redis.Redis, prefix: str, *, slot_lease_s: float = 30.0) -> None:
        self._client = client
        self._prefix = prefix
        self._lease_ms = int(slot_lease_s * 1000)
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)
        self._penalize = client.register_script(_PENALIZE)
        self._renewer = SlotRenewer(self, slot_lease_s / 3)
        self._wakeups = Wakeups()

    def _keys(self, bucket: str) -> list[str]:
        return [keys.model_limit(self._prefix, bucket, part) for part in _PARTS]

    def try_admit(self, buckets: Mapping[str, ModelLimit], call: str, estimate: int) -> float:
        """0 if `call` is admitted into every bucket, else how many seconds capacity is
        expected to take."""
        keys: list[str] = []
        arguments: list[int | str] = [call, estimate, self._lease_ms]
        for name, limit in buckets.items():
            keys += self._keys(name)
            arguments += [
                limit.max_concurrency or 0,
                limit.requests_per_minute or 0,
                limit.tokens_per_minute or 0,
            ]
        arguments.append(int(MAX_POLL_S * 1000))
        wait_ms = int(self._acquire(keys=keys, args=arguments))
        if wait_ms == 0 and any(limit.max_concurrency for limit in buckets.values()):
            self._renewer.hold(call, [self._keys(name)[0] for name in buckets])
        return wait_ms / 1000

    def admit(
        self,
        buckets: Mapping[str, ModelLimit],
        estimate: int,
        deadline: float | None,
        on_wait: Callable[[float], None] | None = None,
    ) -> Held:
        """Wait until the call fits every bucket; `deadline` (monotonic) bounds the wait.
        `on_wait` hears once, with the expected wait, that the call has to wait."""
        call = uuid.uuid4().hex
        polls = 0
        while (wait_s := self.try_admit(buckets, call, estimate)) > 0:
            if polls == 0 and on_wait is not None:
                on_wait(wait_s)
            self._wakeups.sleep(_pause_before(deadline, wait_s, polls))
            polls += 1
        return Held(call, tuple(buckets))

    async def aadmit(
        self,
        buckets: Mapping[str, ModelLimit],
        estimate: int,
        deadline: float | None,
        on_wait: Callable[[float], None] | None = None,
    ) -> Held:
        """`admit` for a call on an event loop: Redis is asked from a thread, waits are awaited."""
        call = uuid.uuid4().hex
        polls = 0
        while (wait_s := await asyncio.to_thread(self.try_admit, buckets, call, estimate)) > 0:
            if polls == 0 and on_wait is not None:
                await asyncio.to_thread(on_wait, wait_s)
            await self._wakeups.asleep(_pause_before(deadline, wait_s, polls))
            polls += 1
        return Held(call, tuple(buckets))

    def release(self, held: Held, used_tokens: int | None) -> None:
        """The call ended; `used_tokens` (the provider's count) replaces its estimate."""
        self._renewer.drop(held.call)
        keys = [key for name in held.buckets for key in self._keys(name)]
        self._release(keys=keys, args=[held.call, -1 if used_tokens is None else used_tokens])
        self._wakeups.wake()

    def penalize(self, buckets: tuple[str, ...], retry_after_s: float) -> None:
        """The provider answered 429: pause these buckets and shrink their caps for a while."""
        keys = [key for name in buckets for key in self._keys(name)[4:]]
        pause_ms = max(1, int(retry_after_s * 1000))
        self._penalize(keys=keys, args=[pause_ms, int(SHRINK_S * 1000), SHRINK_FLOOR])

    def renew(self, held: Mapping[str, list[str]]) -> None:
        keys = [key for call, slots in held.items() for key in slots]
        calls = [call for call, slots in held.items() for _ in slots]
        if keys:
            self._renew(keys=keys, args=[self._lease_ms, *calls])


def _pause_before(deadline: float | None, wait_s: float, polls: int) -> float:
    """A waiter asks again soon at first, then less often, jittered so that a crowd of waiters
    does not ask in step; never later than the capacity is expected, never past `deadline`."""
    pause: float = min(wait_s, MAX_POLL_S, 0.02 * 2**polls) * random.uniform(0.5, 1.0)
    if deadline is not None and time.monotonic() + pause > deadline:
        raise CapacityTimeoutError("the deadline came while waiting for the model provider's capacity")
    return pause


class Wakeups:
    """Wakes this process's waiting calls when one of its calls ends: the slot it freed goes to
    a call here at once rather than at its next poll. (A slot another process frees is found
    by polling.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: set[threading.Event] = set()
        self._tasks: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def sleep(self, seconds: float) -> None:
        woken = threading.Event()
        with self._lock:
            self._threads.add(woken)
        try:
            woken.wait(seconds)
        finally:
            with self._lock:
                self._threads.discard(woken)

    async def asleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        entry = (loop, woken)
        with self._lock:
            self._tasks.add(entry)
        try:
            await asyncio.wait([woken], timeout=seconds)
        finally:
            with self._lock:
                self._tasks.discard(entry)

    def wake(self) -> None:
        with self._lock:
            threads, tasks = list(self._threads), list(self._tasks)
        for event in threads:
            event.set()
        for loop, future in tasks:
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile: nobody waits there
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class SlotRenewer:
    """Keeps the slot leases of this process's running calls: one thread while any runs."""

    def __init__(self, limiter: PoolLimiter, every_s: float) -> None:
        self._limiter = limiter
        self._every_s = every_s
        self._held: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def hold(self, call: str, slot_keys: list[str]) -> None:
        with self._lock:
            if self._pid != os.getpid():  # a forked child (prefork pool): its parent's thread is not here
                self._held, self._thread, self._pid = {}, None, os.getpid()
            self._held[call] = slot_keys
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="taskforce-slot-renewer", daemon=True)
                self._thread.start()

    def drop(self, call: str) -> None:
        with self._lock:
            self._held.pop(call, None)

    def _run(self) -> None:
        while True:
            time.sleep(self._every_s)
            with self._lock:
                held = dict(self._held)
                if not held:  # nothing to keep: the next call starts the thread again
                    self._thread = None
                    return
            try:
                self._limiter.renew(held)
            except redis.RedisError as error:
                logger.warning("could not renew %d model call slot(s): %s", len(held), error)

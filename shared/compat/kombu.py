"""Keep a worker alive, and consuming, when its Redis broker restarts under running jobs.

With kombu 5.7, a worker that has late-acknowledged jobs running and a free slot (so a BRPOP is
waiting; the threads pool nearly always has one) can die when Redis goes away:
`Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")`.

Celery answers a lost connection with `Connection.collect()`, then `Connection.close()`
(celery/worker/consumer/consumer.py:476 and :487). For Redis, `collect()` closes the default
channel, which fails at once on its pending BRPOP (kombu/transport/redis.py:1894), detaches the
transport (`transport.client = None`, kombu/connection.py:429) and yet keeps that channel as the
default. `close()` closes it again, this time through: the channel drops its Redis pool and hands
its unacknowledged messages back (kombu/transport/virtual/base.py:806, then
kombu/transport/redis.py:494), which needs a new pool, built from `self.connection.client`, now
None (kombu/transport/redis.py:1959). An AttributeError is no connection error, so no cleanup
guard catches it and the worker stops (celery/worker/worker.py:275). The jobs still running
would hit the same error when they acknowledge their messages through that channel.

Here every Redis channel remembers the connection parameters it was built with, so it still
knows where its Redis is once its transport is gone. The messages are then handed back if Redis
is up again, or stay unacknowledged if it is not (the close fails with a connection error, which
the cleanup expects); the running jobs' acknowledgements reach Redis as soon as it is back; and
the consumer reconnects and takes new work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import kombu
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

# The release series this was written against; a later kombu may fix or move the code.
PATCHED_KOMBU = "5.7."

_original_connparams: Callable[..., dict[str, Any]] = kombu_redis.Channel._connparams
_REMEMBERED = "_taskforce_connparams"


class CollectedTransportError(RedisConnectionError):
    """A channel whose transport is gone, and which never connected, was asked for a pool."""


def _connparams(self: kombu_redis.Channel, asynchronous: bool = False) -> dict[str, Any]:
    remembered: dict[bool, dict[str, Any]] = self.__dict__.setdefault(_REMEMBERED, {})
    if self.connection is not None and self.connection.client is not None:
        remembered[asynchronous] = _original_connparams(self, asynchronous=asynchronous)
    elif asynchronous not in remembered:
        raise CollectedTransportError("the broker connection of this channel closed before it connected")
    return dict(remembered[asynchronous])


def install() -> None:
    """Make kombu's Redis channels remember their connection parameters. Idempotent; on another
    kombu than the one it was written for it only says so, and tests/faults shows whether that
    kombu still needs it."""
    if kombu_redis.Channel._connparams is _connparams:
        return
    if not kombu.__version__.startswith(PATCHED_KOMBU):
        logger.warning(
            "kombu %s is not %sx: Redis channels will not survive a restart under running jobs",
            kombu.__version__,
            PATCHED_KOMBU,
        )
        return
    # Upstream: kombu issues #582 and #970 (the same AttributeError from a channel whose transport
    # was gone); celery issue #10205 and kombu PR #2007 (workers that stop consuming after a
    # Redis reset). Drop this once a kombu release passes tests/faults without it.
    kombu_redis.Channel._connparams = _connparams  # type: ignore[method-assign]

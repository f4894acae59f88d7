"""Scope names: the disjoint keyspaces (`memories`, `runs/<id>`) a store is divided into."""

from __future__ import annotations

import hashlib
import re

_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def scope_name(name: str) -> str:
    """A checked scope name: `/`-separated segments of letters, digits, `_`, `.` and `-`."""
    segments = name.split("/")
    if not name or any(not _SEGMENT.match(s) or s in {".", ".."} for s in segments):
        raise ValueError(
            f"invalid scope name {name!r}: use '/'-separated segments of letters, digits, '_', '.', '-'"
        )
    return name


def join_scope(base: str, name: str) -> str:
    """`name` nested inside the scope `base` (the root scope is the empty string)."""
    return f"{base}/{scope_name(name)}" if base else scope_name(name)


def run_scope(run_id: str) -> str:
    """The workspace scope of one run. Ids that are not plain names (thread ids can be any string)
    are hashed, so that no run id can name or reach another run's workspace."""
    if _RUN_ID.match(run_id) and run_id not in {".", ".."}:
        return f"runs/{run_id}"
    return "runs/" + hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]

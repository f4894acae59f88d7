"""The results file of a batch, which is also its memory across reruns.

Each finished item is appended as one JSON line and flushed to disk at once, so a batch killed
at any moment keeps every item it finished; a half-written last line (the kill came mid-write)
is ignored on the next read. A rerun skips the ids whose latest line is `ok` and runs the
others again. Once a batch gets to its end, the file is rewritten with one line per id, in
input order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.schemas import Report, TokenUsage

ItemStatus = Literal["ok", "failed", "needs_approval"]


class DelegationSummary(BaseModel):
    """What a results line keeps of one delegation: the report without its bookkeeping."""

    subagent_type: str
    status: str
    summary: str
    full_report_path: str | None = None
    artifacts: tuple[str, ...] = ()

    @classmethod
    def of(cls, report: Report) -> DelegationSummary:
        return cls(
            subagent_type=report.subagent_type,
            status=report.status,
            summary=report.summary,
            full_report_path=report.full_report_path,
            artifacts=report.artifacts,
        )


class ItemResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    status: ItemStatus
    thread_id: str
    attempt: int = Field(ge=1)
    answer: str = ""
    error: str | None = None
    delegations: list[DelegationSummary] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    duration_s: float = 0.0


class ResultsFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.latest: dict[str, ItemResult] = {}
        self.attempts: dict[str, int] = {}
        if path.exists():
            self._read()

    def _read(self) -> None:
        with self.path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    result = ItemResult.model_validate_json(line)
                except ValidationError:
                    continue  # a line cut short by a kill, or not ours
                self.latest[result.id] = result
                self.attempts[result.id] = max(self.attempts.get(result.id, 0), result.attempt)

    def done(self, item_id: str) -> bool:
        result = self.latest.get(item_id)
        return result is not None and result.status == "ok"

    def next_attempt(self, item_id: str) -> int:
        """A failed item runs again on a fresh thread; one that never finished resumes its
        thread, since it wrote no line, and so does one waiting for approval."""
        latest = self.latest.get(item_id)
        if latest is not None and latest.status == "needs_approval":
            return latest.attempt
        return self.attempts.get(item_id, 0) + 1

    def append(self, result: ItemResult) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(result.model_dump_json() + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.latest[result.id] = result
        self.attempts[result.id] = max(self.attempts.get(result.id, 0), result.attempt)

    def compact(self, order: list[str]) -> None:
        """One line per id, input order first; atomically, so a kill leaves the old file."""
        ranked = {item_id: index for index, item_id in enumerate(order)}
        results = sorted(self.latest.values(), key=lambda result: ranked.get(result.id, len(ranked)))
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        with temporary.open("w", encoding="utf-8") as out:
            out.writelines(result.model_dump_json() + "\n" for result in results)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self.path)

"""A batch file: one main-agent run per JSON line, `{"id": ..., "prompt": ..., "context": {...}}`.

A bad line costs only itself: it is named by its line number and skipped, and the other lines
run. The same goes for a second line with an id already seen, since ids key the results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    prompt: str = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        # Numbered lines are common; `1` and `"1"` name the same item.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


@dataclass(frozen=True)
class BatchInput:
    items: list[BatchItem]
    rejected: list[str]
    """One line per bad input line: `line N: what is wrong`."""


def _problem(error: ValidationError) -> str:
    # Without the input: a context value may be a secret.
    parts = []
    for problem in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in problem["loc"])
        parts.append(f"{where}: {problem['msg']}" if where else problem["msg"])
    return "; ".join(parts)


def read_batch(path: Path) -> BatchInput:
    items: list[BatchItem] = []
    rejected: list[str] = []
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = BatchItem.model_validate(json.loads(line))
            except json.JSONDecodeError as error:
                rejected.append(f"line {number}: not JSON ({error.msg})")
                continue
            except ValidationError as error:
                rejected.append(f"line {number}: {_problem(error)}")
                continue
            if item.id in first_line:
                rejected.append(f"line {number}: id {item.id!r} already used on line {first_line[item.id]}")
                continue
            first_line[item.id] = number
            items.append(item)
    return BatchInput(items, rejected)

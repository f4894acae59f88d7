"""Every `a*` method answers exactly as its blocking twin."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from deepagents.backends.protocol import BackendProtocol

Step = tuple[str, tuple[Any, ...], dict[str, Any]]


def scenario(root: str) -> list[Step]:
    """A run through every method, successes and failures alike, inside `root`."""
    return [
        ("write", (f"{root}/a.txt", "alpha\nbeta\ngamma\n"), {}),
        ("write", (f"{root}/sub/b.py", "beta = 1\n"), {}),
        ("upload_files", ([(f"{root}/blob.bin", bytes(range(256))), (f"{root}/c.md", b"beta\n")],), {}),
        ("read", (f"{root}/a.txt",), {"offset": 1, "limit": 1}),
        ("read", (f"{root}/a.txt",), {"offset": 9}),
        ("read", (f"{root}/a.txt",), {"limit": 0}),
        ("read", (f"{root}/blob.bin",), {}),
        ("read", (f"{root}/missing.txt",), {}),
        ("edit", (f"{root}/a.txt", "beta", "BETA"), {}),
        ("edit", (f"{root}/a.txt", "a", "b"), {}),
        ("edit", (f"{root}/a.txt", "a", "b"), {"replace_all": True}),
        ("edit", (f"{root}/missing.txt", "a", "b"), {}),
        ("ls", (root,), {}),
        ("ls", (f"{root}/sub",), {}),
        ("glob", ("*.py",), {"path": root}),
        ("glob", ("../*",), {"path": root}),
        ("grep", ("beta",), {"path": root}),
        ("grep", ("beta",), {"path": root, "glob": "*.md"}),
        ("grep", ("beta",), {"path": root, "max_count": 1}),
        ("download_files", ([f"{root}/blob.bin", f"{root}/missing", f"{root}/a.txt"],), {}),
        ("delete", (f"{root}/sub",), {}),
        ("delete", (f"{root}/sub",), {}),
        ("ls", (root,), {}),
    ]


def comparable(value: Any, root: str) -> Any:
    """A result as plain data with `root` replaced and the timestamps, which differ from one call
    to the next, left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: comparable(v, root) for k, v in value.items() if k not in {"created_at", "modified_at"}}
    if isinstance(value, list | tuple):
        return [comparable(item, root) for item in value]
    return value.replace(root, "<root>") if isinstance(value, str) else value


def run_blocking(backend: BackendProtocol, root: str) -> list[Any]:
    return [
        comparable(getattr(backend, name)(*args, **kwargs), root) for name, args, kwargs in scenario(root)
    ]


async def run_async(backend: BackendProtocol, root: str) -> list[Any]:
    return [
        comparable(await getattr(backend, f"a{name}")(*args, **kwargs), root)
        for name, args, kwargs in scenario(root)
    ]


def test_async_twins_answer_as_the_blocking_methods(backend: BackendProtocol) -> None:
    blocking = run_blocking(backend, "/blocking")
    awaited = asyncio.run(run_async(backend, "/awaited"))

    steps = [f"{n}: {name}{args}{kwargs}" for n, (name, args, kwargs) in enumerate(scenario("<root>"))]
    assert dict(zip(steps, awaited, strict=True)) == dict(zip(steps, blocking, strict=True))
    # The scenario did real work: a window, an edit, a recursive delete.
    assert blocking[3]["file_data"]["content"] == "beta\n"
    assert blocking[10]["occurrences"] == 4
    assert [entry["path"] for entry in blocking[-1]["entries"]] == [
        "<root>/a.txt",
        "<root>/blob.bin",
        "<root>/c.md",
    ]

"""How fast the shared filesystem is on Redis: `FilesBackend(RedisStore)` (RedisBackend) against
plain redis-py `SET`/`GET` of the same bytes, on the same Redis, in the same run.

    python -m bench.backends [--redis-url URL] [--quick] [--rounds N]

Rows: write and read of 1 KB, 100 KB and 10 MB (KB and MB are 1024-based) through the byte API
(`upload_files` / `download_files`, the fair comparison) and through the agent-facing text API
(`write` / `read`, which adds UTF-8 encoding, decoding and line slicing); then a literal grep over
1,000 files of 2 KB. Each measurement runs ROUNDS rounds of a fixed number of operations, raw and
backend rounds interleaved; the per-operation time of a round is its total time divided by its
operations, and a row reports the median round. By default it starts a private Redis on a spare
port (the embedded one); given `--redis-url`, it uses a namespace of its own there and deletes
every key it wrote when it stops, interrupted or not. Prints; never fails on a target.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.utils import HIREDIS_AVAILABLE
from rich.console import Console
from rich.table import Table

from orchestrator.embedded import redis_server
from shared.files.backend import FilesBackend
from shared.files.redis import RedisStore

TARGET = 0.8
TARGET_SIZES = frozenset({100 * 1024, 10 * 1024 * 1024})
ROUNDS = 9
QUICK_ROUNDS = 3
# (size in bytes, label, operations per round, operations per round with --quick)
SIZES = [
    (1024, "1 KB", 2000, 200),
    (100 * 1024, "100 KB", 200, 20),
    (10 * 1024 * 1024, "10 MB", 10, 2),
]
GREP_FILES = 1000
GREP_FILE_BYTES = 2 * 1024
GREP_REPS = 20
GREP_QUICK_REPS = 3
GREP_EVERY = 100  # every 100th corpus file holds the needle, on two of its lines
NEEDLE = "NEEDLE-7f3a"
MB = 1024 * 1024


def _log_text(size: int, seed: int = 0, needle_lines: tuple[int, ...] = ()) -> str:
    """`size` bytes of ASCII log lines, so the text API has real lines to split and slice."""
    levels = ("INFO", "DEBUG", "WARN", "ERROR")
    lines = []
    total = 0
    for n in itertools.count():
        line = (
            f"2025-01-{1 + n % 28:02d}T12:{n % 60:02d}:{(n * 7) % 60:02d}.{n % 1000:03d}Z "
            f"{levels[(n + seed) % 4]:<5} service=api-{seed % 10} request_id={seed:04d}-{n:06d} "
            f"GET /v1/items/{(n * 31 + seed) % 9973} 200 {(n * 13) % 500}ms"
        )
        if n in needle_lines:
            line += f" {NEEDLE}"
        lines.append(line + "\n")
        total += len(lines[-1])
        if total >= size:
            break
    return "".join(lines)[:size]


@dataclass
class Row:
    operation: str
    size: str
    nbytes: int  # per operation, for MB/s; 0 when MB/s means nothing
    raw_s: float  # median seconds per operation
    backend_s: float
    gated: bool  # whether the 0.8x target applies to this row


def _per_op(op: Callable[[], object], reps: int) -> float:
    started = time.perf_counter()
    for _ in range(reps):
        op()
    return (time.perf_counter() - started) / reps


def _medians(ops: list[Callable[[], object]], reps: int, rounds: int) -> list[float]:
    """Median seconds per operation of each op; one warm-up call each, then interleaved rounds."""
    for op in ops:
        op()
    times: list[list[float]] = [[] for _ in ops]
    for _ in range(rounds):
        for op, samples in zip(ops, times, strict=True):
            gc.collect()
            samples.append(_per_op(op, reps))
    return [statistics.median(samples) for samples in times]


def _check(condition: bool, message: str) -> None:
    """Measuring a wrong answer is pointless: stop loudly (not `assert`, which -O strips)."""
    if not condition:
        raise RuntimeError(message)


def _size(
    client: redis.Redis,
    backend: FilesBackend,
    namespace: str,
    *,
    size: int,
    label: str,
    reps: int,
    rounds: int,
) -> list[Row]:
    text = _log_text(size, seed=size % 97)
    data = text.encode("utf-8")
    key = f"{namespace}:raw:{label.replace(' ', '')}"
    path = f"/sizes/{label.replace(' ', '')}.log"
    lines = text.count("\n") + 1

    # Correctness once, outside the clock: every side hands back the very same bytes.
    client.set(key, data)
    backend.upload_files([(path, data)])
    _check(client.get(key) == data, f"raw GET of {label} differs")
    _check(backend.download_files([path])[0].content == data, f"download of {label} differs")
    read = backend.read(path, 0, lines)
    _check(read.file_data is not None and read.file_data["content"] == text, f"read of {label} differs")

    raw_w, up, write = _medians(
        [
            lambda: client.set(key, data),
            lambda: backend.upload_files([(path, data)]),
            lambda: backend.write(path, text),
        ],
        reps,
        rounds,
    )
    # The whole file (limit = its line count), so the text read delivers the same bytes.
    raw_r, down, text_r = _medians(
        [
            lambda: client.get(key),
            lambda: backend.download_files([path]),
            lambda: backend.read(path, 0, lines),
        ],
        reps,
        rounds,
    )
    gated = size in TARGET_SIZES
    return [
        Row("write  upload_files", label, size, raw_w, up, gated),
        Row("write  write (text)", label, size, raw_w, write, False),
        Row("read   download_files", label, size, raw_r, down, gated),
        Row("read   read (text)", label, size, raw_r, text_r, False),
    ]


def _grep(client: redis.Redis, backend: FilesBackend, namespace: str, quick: bool, rounds: int) -> Row:
    corpus = []
    for i in range(GREP_FILES):
        needles = (3, 17) if i % GREP_EVERY == 0 else ()
        corpus.append((f"/corpus/f{i:04d}.log", _log_text(GREP_FILE_BYTES, i, needles).encode()))
    keys = [f"{namespace}:raw:corpus:{i:04d}" for i in range(GREP_FILES)]
    backend.upload_files(corpus)
    client.mset({key: data for key, (_, data) in zip(keys, corpus, strict=True)})

    def raw_grep() -> int:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        found = 0
        for value in pipe.execute():
            for line in value.decode("utf-8").split("\n"):
                if NEEDLE in line:
                    found += 1
        return found

    def backend_grep() -> int:
        return len(backend.grep(NEEDLE, "/corpus").matches or [])

    expected = 2 * len(range(0, GREP_FILES, GREP_EVERY))
    raw_count, backend_count = raw_grep(), backend_grep()
    _check(
        raw_count == backend_count == expected,
        f"grep disagrees: raw {raw_count}, backend {backend_count}, expected {expected}",
    )
    raw_s, backend_s = _medians([raw_grep, backend_grep], GREP_QUICK_REPS if quick else GREP_REPS, rounds)
    label = f"{GREP_FILES:,} × {GREP_FILE_BYTES // 1024} KB"
    return Row(f"grep   ({expected} matches)", label, GREP_FILES * GREP_FILE_BYTES, raw_s, backend_s, False)


def _cleanup(client: redis.Redis, namespace: str) -> int:
    removed = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{namespace}:*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            removed += int(client.delete(*batch))
            batch = []
    if batch:
        removed += int(client.delete(*batch))
    return removed


def _rate(seconds: float, nbytes: int) -> tuple[str, str]:
    ops = f"{1 / seconds:,.0f}" if seconds < 1 else f"{1 / seconds:,.2f}"
    return ops, f"{nbytes / MB / seconds:,.1f}" if nbytes else "—"


def _table(rows: list[Row], title: str) -> Table:
    table = Table(title=title)
    for column in ("operation", "size", "raw ops/s", "raw MB/s", "backend ops/s", "backend MB/s"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    table.add_column("backend/raw", justify="right")
    table.add_column("target", justify="center")
    for row in rows:
        ratio = row.raw_s / row.backend_s  # throughput ratio: 1.0 = as fast as raw
        verdict = ("PASS" if ratio >= TARGET else "BELOW") if row.gated else "—"
        table.add_row(
            row.operation,
            row.size,
            *_rate(row.raw_s, row.nbytes),
            *_rate(row.backend_s, row.nbytes),
            f"{ratio:.2f}×",
            verdict,
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backends", description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", help="Redis to measure (default: a private one on a spare port)")
    parser.add_argument("--quick", action="store_true", help="about a tenth of the operations: a smoke run")
    parser.add_argument(
        "--rounds", type=int, help=f"rounds per measurement (default {ROUNDS}, {QUICK_ROUNDS} with --quick)"
    )
    args = parser.parse_args(argv)

    console = Console(width=max(Console().width, 120))
    with contextlib.ExitStack() as stack:
        if args.redis_url is None:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="taskforce-bench-"))
            url = stack.enter_context(redis_server(Path(scratch)))
            _run(url, args, console, where="a private Redis")
        else:
            _run(args.redis_url, args, console, where=args.redis_url)


def _run(url: str, args: argparse.Namespace, console: Console, *, where: str) -> None:
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    namespace = f"bench:backends:{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(url)
    store = RedisStore.from_url(url, namespace)
    backend = FilesBackend(store)
    started = time.monotonic()
    rows: list[Row] = []
    try:
        version = client.info("server").get("redis_version", "?")
        for size, label, reps, quick_reps in SIZES:
            n = quick_reps if args.quick else reps
            rows += _size(client, backend, namespace, size=size, label=label, reps=n, rounds=rounds)
        rows.append(_grep(client, backend, namespace, args.quick, rounds))
    except KeyboardInterrupt:
        console.print("interrupted")
        rows = []
    finally:
        removed = _cleanup(client, namespace)
        client.close()
        store.client.close()
    cleaned = f"removed {removed} keys under {namespace}:*"
    if not rows:
        console.print(cleaned)
        raise SystemExit(130)
    reply_parser = "hiredis" if HIREDIS_AVAILABLE else "pure-Python parser"
    client_name = f"redis-py {redis.__version__} ({reply_parser})"
    console.print(_table(rows, f"RedisBackend vs raw {client_name}, Redis {version} on {where}"))
    console.print(
        f"median time per operation over {rounds} rounds, raw and backend rounds interleaved; "
        "ops/s = 1 / median, MB = 2^20 bytes;\n"
        "backend/raw = backend ops/s ÷ raw ops/s (1.00× = as fast as raw)"
    )
    console.print(f"target: RedisBackend >= {TARGET}x raw redis-py for 100 KB and 10 MB")
    console.print(f"ran {time.monotonic() - started:.1f} s; {cleaned}")


if __name__ == "__main__":
    main()

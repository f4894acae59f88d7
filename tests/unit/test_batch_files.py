"""Reading a batch file and keeping its results file: bad lines cost only themselves, and the
results file is the batch's memory across reruns, even after a kill mid-write."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.batch.input import read_batch
from orchestrator.batch.results import ItemResult, ResultsFile
from orchestrator.batch.run import batch_id_for


def test_bad_lines_are_named_and_the_good_ones_kept(tmp_path: Path) -> None:
    batch = tmp_path / "in.jsonl"
    batch.write_text(
        "\n".join(
            [
                json.dumps({"id": 1, "prompt": "one", "context": {"user": "ann"}}),
                "{not json",
                "",
                json.dumps({"id": "1", "prompt": "the same id, as text"}),
                json.dumps({"id": "x", "prompt": "hi", "priority": 9}),
                json.dumps({"id": "y", "prompt": ""}),
                json.dumps({"id": "z", "prompt": "fine", "context": {"api_key": "sk-SECRET"}}),
                json.dumps({"prompt": "no id", "context": {"api_key": "sk-SECRET"}, "bogus": 1}),
            ]
        )
    )

    read = read_batch(batch)

    assert [(item.id, item.prompt) for item in read.items] == [("1", "one"), ("z", "fine")]
    assert read.items[0].context == {"user": "ann"}
    assert read.rejected[0].startswith("line 2: not JSON")
    assert read.rejected[1] == "line 4: id '1' already used on line 1"
    assert read.rejected[2] == "line 5: priority: Extra inputs are not permitted"
    assert read.rejected[3].startswith("line 6: prompt: String should have at least 1 character")
    assert read.rejected[4].startswith("line 8: id: Field required")
    assert not any("sk-SECRET" in problem for problem in read.rejected)


def _result(item_id: str, status: str = "ok", attempt: int = 1) -> ItemResult:
    return ItemResult.model_validate(
        {"id": item_id, "status": status, "thread_id": f"t:{item_id}:{attempt}", "attempt": attempt}
    )


def test_a_rerun_skips_what_is_ok_and_retries_what_failed_on_a_fresh_thread(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    results = ResultsFile(path)
    results.append(_result("a"))
    results.append(_result("b", "failed"))
    with path.open("a") as out:
        out.write('{"id": "c", "status": "ok", "thread')  # a kill mid-write

    again = ResultsFile(path)

    assert again.done("a")
    assert not again.done("b")
    assert not again.done("c")
    assert again.next_attempt("a") == 2
    assert again.next_attempt("b") == 2  # failed: a new thread
    assert again.next_attempt("c") == 1  # never finished: its thread resumes


def test_compacting_keeps_the_latest_line_per_id_in_input_order(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    results = ResultsFile(path)
    results.append(_result("b", "failed"))
    results.append(_result("a"))
    results.append(_result("b", "ok", attempt=2))

    results.compact(["a", "b"])

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["id"], line["status"], line["attempt"]) for line in lines] == [
        ("a", "ok", 1),
        ("b", "ok", 2),
    ]


def test_the_batch_id_follows_the_results_file(tmp_path: Path) -> None:
    first = batch_id_for(tmp_path / "nightly results.jsonl")
    assert first == batch_id_for(tmp_path / "." / "nightly results.jsonl")
    assert first != batch_id_for(tmp_path / "other.jsonl")
    assert first.startswith("batch-nightly-results-")

"""Context economy: what N delegations that each read a 200 KB document and answer with a 50 KB
digest leave in the main agent's context, in-process against taskforce, in one run.

    python -m bench.economy            # 50 delegations
    python -m bench.economy --quick    # 10

The subagent is the integration tests' `digester`: it reads the input file its task names with
`read_file` (deepagents evicts a result that large to `/large_tool_results/` in the subagent's
own context, on both sides) and answers with a 50 KB digest. The main agent's scripted model
delegates the N documents in one turn and then answers. deepagents keeps the inputs in its
default state backend; taskforce in its shared files on the embedded Redis.

Printed per side: the tokens (LangChain's `count_tokens_approximately`) of what the delegations
returned into the main agent's messages, the largest input its model was sent, whether
deepagents' summarization had to compact the main agent's history, and the bytes the run wrote
to files besides the inputs (the shared store for taskforce; the state's files in-process,
which every checkpoint of the main agent then carries).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from deepagents import create_deep_agent
from deepagents.backends.utils import create_file_data
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately
from rich.console import Console
from rich.table import Table

from bench.common import TEST_REGISTRY, OneTurn, isolated_settings, load_text, task_calls, test_subagents
from orchestrator import create_orchestrator
from orchestrator.embedded import local_cluster
from shared.files import shared_files
from shared.files.scopes import run_scope
from shared.files.workspace import DEFAULT_RUN

DOCUMENT_BYTES = 200 * 1024
DELEGATIONS = 50
QUICK_DELEGATIONS = 10


def _main_model(documents: int) -> OneTurn:
    return OneTurn(calls=task_calls("digester", [f"Digest {_path(n)} at length" for n in range(documents)]))


def _path(number: int) -> str:
    return f"/inputs/document-{number:03d}.txt"


def _document(number: int) -> str:
    line = f"document {number:03d} line {{:05d}}: reading=ok latency=12ms region=eu-west {'~' * 16}\n"
    text = "".join(line.format(n) for n in range(DOCUMENT_BYTES // len(line) + 1))
    return text[:DOCUMENT_BYTES]


@dataclass(frozen=True)
class Outcome:
    returned_tokens: int
    largest_input_tokens: int
    summarized: bool
    written_bytes: int
    reports: int


def _outcome(result: dict[str, Any], model: OneTurn, written_bytes: int) -> Outcome:
    reports = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    if len(reports) != len(model.calls) or any(m.status != "success" for m in reports):
        raise SystemExit(f"not every delegation reported: {[m.content for m in reports][:3]}")
    return Outcome(
        returned_tokens=count_tokens_approximately(reports),
        largest_input_tokens=max(model.inputs),
        summarized=len(model.inputs) > 2,
        written_bytes=written_bytes,
        reports=len(reports),
    )


def _deepagents(documents: int) -> Outcome:
    model = _main_model(documents)
    agent = create_deep_agent(model, subagents=test_subagents("digester"))
    inputs = {_path(n): create_file_data(_document(n)) for n in range(documents)}
    given: Any = {"messages": [HumanMessage(content="digest")], "files": inputs}  # the agent's input type
    result = agent.invoke(given)
    written = sum(
        len(str(data["content"]).encode())
        for path, data in result.get("files", {}).items()
        if path not in inputs
    )
    return _outcome(result, model, written)


def _taskforce(documents: int) -> Outcome:
    settings = isolated_settings(subagents=TEST_REGISTRY, general_purpose=False)
    with local_cluster(settings) as live:
        files = shared_files(live)
        uploads = [(_path(n), _document(n).encode()) for n in range(documents)]
        for response in files.backend().upload_files(uploads):
            if response.error:
                raise SystemExit(f"could not upload {response.path}: {response.error}")
        model = _main_model(documents)
        result = create_orchestrator(model, settings=live).invoke(
            {"messages": [HumanMessage(content="digest")]}
        )
        workspace = files.store.scope(run_scope(DEFAULT_RUN))  # the run's, as it has no thread id
        stored = sum(entry.size for entry in workspace.walk("/"))
        return _outcome(result, model, stored - sum(len(content) for _, content in uploads))


def main(quick: bool) -> None:
    documents = QUICK_DELEGATIONS if quick else DELEGATIONS
    console = Console(width=None if sys.stdout.isatty() else 150)
    load_before = os.getloadavg()
    sides = {"deepagents in-process": _deepagents(documents), "taskforce": _taskforce(documents)}
    table = Table(
        title=f"{documents} delegations, each reading {DOCUMENT_BYTES // 1024} KB and answering 50 KB"
    )
    for column in (
        "side",
        "returned into main context",
        "largest main-model input",
        "main history summarized",
        "written to files",
    ):
        table.add_column(column, justify="right")
    for side, outcome in sides.items():
        table.add_row(
            side,
            f"{outcome.returned_tokens:,} tokens",
            f"{outcome.largest_input_tokens:,} tokens",
            "yes" if outcome.summarized else "no",
            f"{outcome.written_bytes / 1024:,.0f} KB",
        )
    console.print(table)
    console.print(
        "Tokens by count_tokens_approximately. Written to files: besides the inputs; in-process "
        f"they are the main agent's state. Load {load_text(load_before)} before, "
        f"{load_text(os.getloadavg())} after."
    )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])

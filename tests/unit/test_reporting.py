"""Turning a finished run into a report: the final text, token usage and the size cap."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest
from deepagents.backends.protocol import GlobResult
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import BaseModel

from shared.files import FilesBackend, read_text
from shared.files.memory import MemoryStore
from shared.schemas import Delegation, Limits, TokenUsage
from workers.reporting import cap_summary, final_text, report_path


def make_delegation(report_max_chars: int = 300, delegation_id: str = "thread-9:call_1") -> Delegation:
    return Delegation(
        id=delegation_id,
        subagent_type="researcher",
        description="d",
        limits=Limits(timeout_s=5, report_max_chars=report_max_chars, recursion_limit=10),
    )


@pytest.fixture
def backend() -> FilesBackend:
    return FilesBackend(MemoryStore(uuid.uuid4().hex))


def test_final_text_is_the_last_non_empty_ai_message() -> None:
    messages = [
        HumanMessage("question"),
        AIMessage("first draft"),
        AIMessage("the answer  \n"),
        AIMessage("", tool_calls=[{"name": "t", "args": {}, "id": "1", "type": "tool_call"}]),
        ToolMessage("tool output", tool_call_id="1"),
        AIMessage("   "),
    ]
    assert final_text({"messages": messages}) == "the answer"


def test_final_text_reads_content_blocks() -> None:
    message = AIMessage(content=[{"type": "text", "text": "from blocks"}])
    assert final_text({"messages": [message]}) == "from blocks"


def test_final_text_without_an_answer_is_empty() -> None:
    assert final_text({"messages": [HumanMessage("q"), ToolMessage("x", tool_call_id="1")]}) == ""
    assert final_text({}) == ""


class Finding(BaseModel):
    service: str
    errors: int


@dataclass
class FindingRecord:
    service: str
    errors: int


@pytest.mark.parametrize(
    "structured",
    [
        Finding(service="api", errors=3),
        FindingRecord(service="api", errors=3),
        {"service": "api", "errors": 3},
    ],
    ids=["pydantic", "dataclass", "dict"],
)
def test_structured_response_wins_as_json(structured: object) -> None:
    result = {"messages": [AIMessage("prose answer")], "structured_response": structured}
    assert final_text(result).replace(" ", "") == '{"service":"api","errors":3}'


def test_token_usage_sums_all_messages() -> None:
    messages = [
        HumanMessage("q"),
        AIMessage("a", usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}),
        ToolMessage("t", tool_call_id="1"),
        AIMessage("b", usage_metadata={"input_tokens": 20, "output_tokens": 7, "total_tokens": 27}),
    ]
    assert TokenUsage.of_messages(messages) == TokenUsage(input_tokens=30, output_tokens=12, total_tokens=42)


def test_token_usage_of_no_messages_is_zero() -> None:
    assert TokenUsage.of_messages([]) == TokenUsage()


def test_report_path_is_per_subagent_short_and_stable() -> None:
    path = report_path(make_delegation())
    assert re.fullmatch(r"/reports/researcher/[0-9a-f]{20}\.md", path)
    assert report_path(make_delegation()) == path


def test_short_text_is_left_alone(backend: FilesBackend) -> None:
    text = "x" * 300

    summary, path = cap_summary(text, make_delegation(report_max_chars=300), backend)

    assert (summary, path) == (text, None)
    assert backend.glob("**") == GlobResult(matches=[])


def test_long_text_goes_to_the_files_and_the_summary_names_it(backend: FilesBackend) -> None:
    delegation = make_delegation(report_max_chars=300)
    text = "".join(f"line {n}\n" for n in range(200))

    summary, path = cap_summary(text, delegation, backend)

    assert path == report_path(delegation)
    assert read_text(backend, path) == text
    assert len(summary) <= 300
    assert path in summary
    assert summary.startswith("line 0\nline 1\n")
    assert f"of {len(text)} chars" in summary


def test_summary_stays_within_the_limit_even_for_a_long_id(backend: FilesBackend) -> None:
    delegation = make_delegation(report_max_chars=200, delegation_id="t" * 200)

    summary, _ = cap_summary("x" * 1000, delegation, backend)

    assert len(summary) <= 200

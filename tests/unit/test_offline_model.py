"""The deterministic `offline` model: its documented policy, one rule at a time."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool

from shared.offline_model import OFFLINE_MARK, OfflineChatModel

# general-purpose is listed first so that "the first specialised type" differs from "the first type".
TASK_DESCRIPTION = (
    "Launch a subagent.\n\nAvailable agent types:\n"
    "- general-purpose: anything else\n"
    "- log-analyst: reads logs\n"
    "- reporter: writes reports\n"
)


def _task(description: str, subagent_type: str) -> str:
    return "unused"


def _read_log(path: str) -> str:
    return "unused"


def _count_lines(path: str) -> str:
    return "unused"


def _search(query: str) -> str:
    return "unused"


def _write_file(file_path: str, content: str) -> str:
    return "unused"


def make_tool(func: object, name: str, description: str = "A tool.") -> BaseTool:
    return StructuredTool.from_function(func, name=name, description=description)  # type: ignore[arg-type]


TASK = make_tool(_task, "task", TASK_DESCRIPTION)
READ_LOG = make_tool(_read_log, "read_log")
COUNT_LINES = make_tool(_count_lines, "count_lines")
SEARCH = make_tool(_search, "search")
WRITE_FILE = make_tool(_write_file, "write_file")


def ask(tools: Sequence[BaseTool], messages: list[BaseMessage]) -> AIMessage:
    reply = OfflineChatModel().bind_tools(tools).invoke(messages)
    assert isinstance(reply, AIMessage)
    return reply


def tool_result(name: str, content: str, call_id: str) -> ToolMessage:
    return ToolMessage(content=content, name=name, tool_call_id=call_id)


def call(name: str, call_id: str, **args: str) -> AIMessage:
    return AIMessage(
        content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}]
    )


def test_every_bullet_becomes_a_task_call_in_one_message() -> None:
    request = "Check these services:\n- api gateway\n  - billing worker\n* search index\nThanks."

    reply = ask([TASK], [SystemMessage("You coordinate."), HumanMessage(request)])

    assert [c["name"] for c in reply.tool_calls] == ["task", "task", "task"]
    assert [c["args"]["description"] for c in reply.tool_calls] == [
        "api gateway",
        "billing worker",
        "search index",
    ]
    assert len({c["id"] for c in reply.tool_calls}) == 3
    assert reply.content == ""


def test_delegates_to_the_first_specialised_type_by_default() -> None:
    reply = ask([TASK], [HumanMessage("Look into:\n- a\n- b")])
    assert {c["args"]["subagent_type"] for c in reply.tool_calls} == {"log-analyst"}


@pytest.mark.parametrize("named", ["reporter", "general-purpose"])
def test_delegates_to_the_type_the_request_names(named: str) -> None:
    reply = ask([TASK], [HumanMessage(f"Ask the {named} agent about:\n- a\n- b")])
    assert {c["args"]["subagent_type"] for c in reply.tool_calls} == {named}


def test_no_bullets_means_no_delegation() -> None:
    reply = ask([TASK], [HumanMessage("Just say hello.")])
    assert reply.tool_calls == []
    assert str(reply.content).startswith(OFFLINE_MARK)


def test_delegates_only_once_per_request() -> None:
    messages: list[BaseMessage] = [
        HumanMessage("Check:\n- a"),
        call("task", "t1", description="a", subagent_type="log-analyst"),
        tool_result("task", "a looks fine\nmore detail", "t1"),
    ]

    reply = ask([TASK], messages)

    assert reply.tool_calls == []
    assert str(reply.content) == f"{OFFLINE_MARK}\n- a looks fine"


def test_calls_the_tools_the_system_prompt_names_with_the_first_path() -> None:
    messages: list[BaseMessage] = [
        SystemMessage("Use read_log and count_lines on the file you are given."),
        HumanMessage("Why does /var/log/app.log grow? Compare with /var/log/old.log"),
    ]

    reply = ask([READ_LOG, COUNT_LINES, SEARCH], messages)

    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("read_log", {"path": "/var/log/app.log"}),
        ("count_lines", {"path": "/var/log/app.log"}),
    ]


def test_non_path_arguments_get_the_request() -> None:
    request = "Find owners of the billing service"
    reply = ask([SEARCH], [SystemMessage("Always search first."), HumanMessage(request)])
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("search", {"query": request})]


def test_a_tool_nobody_names_is_never_called() -> None:
    messages: list[BaseMessage] = [SystemMessage("Be brief."), HumanMessage("Read /var/log/app.log")]

    reply = ask([READ_LOG, SEARCH], messages)

    assert reply.tool_calls == []
    assert str(reply.content).startswith(OFFLINE_MARK)


def test_writes_the_tool_results_where_the_request_says() -> None:
    messages: list[BaseMessage] = [
        SystemMessage("Use read_log."),
        HumanMessage("Read /var/log/app.log and write a summary to /out/x.md."),
        call("read_log", "c1", path="/var/log/app.log"),
        tool_result("read_log", "ERROR disk full\nat 03:00", "c1"),
    ]

    reply = ask([READ_LOG, WRITE_FILE], messages)

    assert [c["name"] for c in reply.tool_calls] == ["write_file"]
    assert reply.tool_calls[0]["args"] == {"file_path": "/out/x.md", "content": "ERROR disk full\nat 03:00"}


def test_final_answer_after_writing() -> None:
    messages: list[BaseMessage] = [
        SystemMessage("Use read_log and count_lines."),
        HumanMessage("Read /var/log/app.log and write a summary to /out/x.md."),
        AIMessage(
            content="",
            tool_calls=[
                {"name": "read_log", "args": {"path": "/var/log/app.log"}, "id": "c1", "type": "tool_call"},
                {
                    "name": "count_lines",
                    "args": {"path": "/var/log/app.log"},
                    "id": "c2",
                    "type": "tool_call",
                },
            ],
        ),
        tool_result("read_log", "\n  - ERROR disk full\nsecond line", "c1"),
        tool_result("count_lines", "120 lines", "c2"),
        call("write_file", "c3", file_path="/out/x.md", content="..."),
        tool_result("write_file", "Updated file /out/x.md", "c3"),
    ]

    reply = ask([READ_LOG, COUNT_LINES, WRITE_FILE], messages)

    assert reply.tool_calls == []
    assert str(reply.content) == (
        f"{OFFLINE_MARK}\n- ERROR disk full\n- 120 lines\nFull text written to /out/x.md."
    )


def test_answer_without_tools_quotes_the_request() -> None:
    reply = ask([], [HumanMessage("\n\nSummarise the incident\nin two lines")])
    assert str(reply.content) == f"{OFFLINE_MARK}\nNothing to do with tools for: Summarise the incident"


def test_usage_metadata_is_reported() -> None:
    messages: list[BaseMessage] = [SystemMessage("s" * 40), HumanMessage("h" * 60)]

    reply = ask([], messages)

    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == 25
    assert reply.usage_metadata["output_tokens"] > 0
    assert reply.usage_metadata["total_tokens"] >= reply.usage_metadata["input_tokens"]


def test_decisions_are_deterministic() -> None:
    messages: list[BaseMessage] = [HumanMessage("Check:\n- a\n- b")]
    assert ask([TASK], messages).tool_calls == ask([TASK], messages).tool_calls


def test_a_path_at_the_end_of_a_sentence_loses_the_period() -> None:
    reply = ask([READ_LOG], [SystemMessage("Use read_log."), HumanMessage("Read /var/log/app.log.")])
    assert reply.tool_calls[0]["args"] == {"path": "/var/log/app.log"}

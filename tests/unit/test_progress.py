"""A delegation's progress stream: steps come back in order, as messages, without secrets."""

from __future__ import annotations

import fakeredis
from langchain_core.messages import AIMessage, ToolMessage

from shared.progress import ProgressPublisher, ProgressReader, progress_key


def test_steps_come_back_in_order_scrubbed_of_secrets_and_are_forgotten_once_read() -> None:
    client = fakeredis.FakeRedis()
    publisher = ProgressPublisher(client, "tf", "dlg-1", ["sk-SECRET"], ttl_s=60)
    reader = ProgressReader(client, "tf", "dlg-1")

    publisher.publish("model", [AIMessage(content="", tool_calls=[{"name": "look", "args": {}, "id": "c1"}])])
    publisher.publish("tools", [ToolMessage(content="key is sk-SECRET", tool_call_id="c1", name="look")])
    steps = reader.read(block=False)

    assert [(step.node, step.messages[0].type) for step in steps] == [("model", "ai"), ("tools", "tool")]
    assert "sk-SECRET" not in str(steps[1].messages[0].content)
    assert reader.read(block=False) == []
    assert 0 < client.ttl(progress_key("tf", "dlg-1")) <= 60
    reader.forget()
    assert not client.exists(progress_key("tf", "dlg-1"))

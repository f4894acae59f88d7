"""A fake OpenAI-compatible provider on loopback, for tests and benchmarks that drive the real
`langchain-openai` client (`openai:<model>` with `OPENAI_BASE_URL`).

It behaves like a provider where taskforce meets one: answers take time (`latency_s`), every
answer reports its token usage, it streams (server-sent events) when asked, and it refuses
work as providers do: 429 with `Retry-After` above `max_in_flight` calls at once, or a scripted
list of failures for the first calls (`fail_first`). What it says is the deterministic
`offline` model's answer to the same messages and tools, so a main agent on it delegates and a
subagent on it calls its tools. Chat completions and the Responses API are both served.

Run in-process (`with FakeProvider() as provider:`), or in a process of its own
(`python -m tests.support.fake_provider`, or `FakeProvider.in_subprocess()`) so that a
benchmark's server does not compete with the code under test for one GIL. Either way it is
configured and read over HTTP too (`/_fake/config`, `/_fake/stats`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, convert_to_messages

from shared.offline_model import OfflineChatModel


@dataclass
class Knobs:
    latency_s: float = 0.0
    max_in_flight: int = 1_000_000
    retry_after_s: float = 1.0
    fail_first: list[int] = field(default_factory=list)
    """Status codes answered, in order, to the first model calls (429s carry Retry-After)."""


@dataclass
class Stats:
    calls: int = 0
    ok: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    paths: dict[str, int] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)
    calls_by_model: dict[str, int] = field(default_factory=dict)


class _Provider:
    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.stats = Stats()
        self.lock = threading.Lock()
        self._paths: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._by_model: Counter[str] = Counter()

    def admit(self, path: str, model: str) -> int | None:
        """Count a call in; the status it is refused with, if it is."""
        with self.lock:
            stats = self.stats
            stats.calls += 1
            self._paths[path] += 1
            stats.paths = dict(self._paths)
            if model not in stats.models:
                stats.models.append(model)
            self._by_model[model] += 1
            stats.calls_by_model = dict(self._by_model)
            refusal = self.knobs.fail_first.pop(0) if self.knobs.fail_first else None
            if refusal is None and stats.in_flight >= self.knobs.max_in_flight:
                refusal = 429
            if refusal is not None:
                self._refused[str(refusal)] += 1
                stats.refused = dict(self._refused)
                return refusal
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
            return None

    def release(self, prompt_tokens: int, completion_tokens: int) -> None:
        with self.lock:
            self.stats.in_flight -= 1
            self.stats.ok += 1
            self.stats.prompt_tokens += prompt_tokens
            self.stats.completion_tokens += completion_tokens

    def reset(self) -> None:
        with self.lock:
            self.stats = Stats(in_flight=self.stats.in_flight)
            self._paths.clear()
            self._refused.clear()
            self._by_model.clear()


def _answer(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> AIMessage:
    model = OfflineChatModel().bind_tools(tools) if tools else OfflineChatModel()
    answer = model.invoke(messages)
    assert isinstance(answer, AIMessage)
    return answer


def _usage(answer: AIMessage) -> tuple[int, int]:
    usage = answer.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
    return max(1, usage["input_tokens"]), max(1, usage["output_tokens"])


# --- chat completions -------------------------------------------------------------------------


def _chat_messages(body: dict[str, Any]) -> list[BaseMessage]:
    messages = [
        {**message, "role": "system"} if message.get("role") == "developer" else message
        for message in body.get("messages", [])
    ]
    return convert_to_messages(messages)


def _chat_tool_calls(answer: AIMessage) -> list[dict[str, Any]]:
    return [
        {
            "id": call["id"] or f"call_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
        }
        for call in answer.tool_calls
    ]


def _chat_completion(model: str, answer: AIMessage) -> dict[str, Any]:
    prompt, completion = _usage(answer)
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if answer.tool_calls:
        message["tool_calls"] = _chat_tool_calls(answer)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if answer.tool_calls else "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _chat_chunks(model: str, answer: AIMessage, with_usage: bool) -> Iterator[dict[str, Any]]:
    base: dict[str, Any] = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk"}
    base |= {"model": model, "created": int(time.time())}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(answer.text):
        yield chunk({"content": piece})
    for index, call in enumerate(_chat_tool_calls(answer)):
        yield chunk({"tool_calls": [{"index": index, **call}]})
    yield chunk({}, "tool_calls" if answer.tool_calls else "stop")
    if with_usage:
        prompt, completion = _usage(answer)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        yield {**base, "choices": [], "usage": usage}


# --- Responses API ----------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _responses_messages(body: dict[str, Any]) -> list[BaseMessage]:
    """The Responses API's input items as chat messages, for the offline model to read."""
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    given = body.get("input", [])
    for item in [{"role": "user", "content": given}] if isinstance(given, str) else given:
        kind = item.get("type", "message")
        if kind == "message":
            role = {"developer": "system"}.get(item["role"], item["role"])
            messages.append({"role": role, "content": _text_of(item.get("content", ""))})
        elif kind == "function_call":
            call = {"id": item["call_id"], "type": "function"}
            call["function"] = {"name": item["name"], "arguments": item.get("arguments", "{}")}
            if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output", "")
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": _text_of(output)})
    return convert_to_messages(messages)


def _responses_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {key: value for key, value in tool.items() if key != "type"}}
        for tool in body.get("tools", [])
        if tool.get("type") == "function"
    ]


def _response_items(answer: AIMessage) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if answer.text:
        items.append(
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:12]}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": answer.text, "annotations": []}],
            }
        )
    for call in _chat_tool_calls(answer):
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{uuid.uuid4().hex[:12]}",
                "call_id": call["id"],
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
                "status": "completed",
            }
        )
    return items


def _response(model: str, answer: AIMessage, items: list[dict[str, Any]], status: str) -> dict[str, Any]:
    prompt, completion = _usage(answer)
    return {
        "id": f"resp_{uuid.uuid4().hex[:12]}",
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": status,
        "output": items,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


def _response_events(model: str, answer: AIMessage) -> Iterator[dict[str, Any]]:
    items = _response_items(answer)
    done = _response(model, answer, items, "completed")
    started = {**done, "status": "in_progress", "output": []}
    yield {"type": "response.created", "response": started}
    for index, item in enumerate(items):
        where = {"output_index": index, "item_id": item["id"]}
        if item["type"] == "message":
            empty = {**item, "status": "in_progress", "content": []}
            yield {"type": "response.output_item.added", "output_index": index, "item": empty}
            part = {"type": "output_text", "text": "", "annotations": []}
            yield {"type": "response.content_part.added", **where, "content_index": 0, "part": part}
            for piece in _pieces(answer.text):
                yield {"type": "response.output_text.delta", **where, "content_index": 0, "delta": piece}
            yield {"type": "response.output_text.done", **where, "content_index": 0, "text": answer.text}
            yield {
                "type": "response.content_part.done",
                **where,
                "content_index": 0,
                "part": item["content"][0],
            }
        else:
            yield {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**item, "arguments": ""},
            }
            arguments = item["arguments"]
            yield {"type": "response.function_call_arguments.delta", **where, "delta": arguments}
            yield {"type": "response.function_call_arguments.done", **where, "arguments": arguments}
        yield {"type": "response.output_item.done", "output_index": index, "item": item}
    yield {"type": "response.completed", "response": done}


def _pieces(text: str, size: int = 16) -> list[str]:
    return [text[start : start + size] for start in range(0, len(text), size)]


# --- HTTP -------------------------------------------------------------------------------------


def _handler(provider: _Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so clients reuse connections as with a provider
        # Headers and body go out in two writes: with Nagle's algorithm the body would wait for
        # the client's delayed ACK, 40 ms a call that no provider adds.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a test's output is not the place for an access log."""

        def _send_json(
            self,
            status: int,
            body: object,
            headers: dict[str, str] | None = None,
            before_body: Callable[[], None] | None = None,
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if before_body is not None:
                before_body()
            self.wfile.write(data)

        def _error(self, status: int, message: str, kind: str, code: str | None = None) -> None:
            headers = {"Retry-After": f"{provider.knobs.retry_after_s:g}"} if status == 429 else None
            self._send_json(status, {"error": {"message": message, "type": kind, "code": code}}, headers)

        def do_GET(self) -> None:
            if self.path == "/_fake/stats":
                with provider.lock:
                    self._send_json(200, asdict(provider.stats))
            elif self.path.endswith("/models"):
                self._send_json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
            else:
                self._error(404, f"no route {self.path}", "invalid_request_error")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/_fake/config":
                with provider.lock:
                    for key, value in body.items():
                        setattr(provider.knobs, key, value)
                self._send_json(200, asdict(provider.knobs))
            elif self.path == "/_fake/reset":
                provider.reset()
                self._send_json(200, {})
            elif self.path.endswith(("/chat/completions", "/responses")):
                self._model_call(body)
            else:
                self._error(404, f"no route {self.path}", "invalid_request_error")

        def _model_call(self, body: dict[str, Any]) -> None:
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                self._error(401, "You didn't provide an API key.", "invalid_request_error", "invalid_api_key")
                return
            model = str(body.get("model", ""))
            refusal = provider.admit(self.path.rsplit("/v1", 1)[-1], model)
            if refusal == 429:
                self._error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded")
                return
            if refusal is not None:
                if refusal >= 500:
                    self._error(refusal, "The server is overloaded.", "server_error")
                else:
                    self._error(refusal, "A scripted refusal.", "invalid_request_error")
                return
            ended = False

            def end(prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
                """Counts the call out before its last byte leaves: a client that has its answer
                may start its next call at once, and that one must not find this one in flight."""
                nonlocal ended
                if not ended:
                    ended = True
                    provider.release(prompt_tokens, completion_tokens)

            try:
                time.sleep(provider.knobs.latency_s)
                chat = self.path.endswith("/chat/completions")
                messages = _chat_messages(body) if chat else _responses_messages(body)
                tools = body.get("tools", []) if chat else _responses_tools(body)
                try:
                    answer = _answer(messages, tools)
                except Exception as error:  # the test's mistake, shown to the client that made it
                    end()
                    self._error(500, f"fake provider cannot answer: {error!r}", "server_error")
                    return
                usage = _usage(answer)
                if not body.get("stream"):
                    self._send_json(
                        200,
                        _chat_completion(model, answer)
                        if chat
                        else _response(model, answer, _response_items(answer), "completed"),
                        before_body=lambda: end(*usage),
                    )
                elif chat:
                    include = bool((body.get("stream_options") or {}).get("include_usage"))
                    events = _chat_chunks(model, answer, include)
                    self._stream(events, done_marker=True, before_last=lambda: end(*usage))
                else:
                    self._stream(
                        _response_events(model, answer), done_marker=False, before_last=lambda: end(*usage)
                    )
            finally:
                end()

        def _stream(
            self, events: Iterator[dict[str, Any]], *, done_marker: bool, before_last: Callable[[], None]
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            # The Responses API numbers its events; chat completion chunks carry no number.
            numbered = [
                event if done_marker else {**event, "sequence_number": n} for n, event in enumerate(events)
            ]
            for number, event in enumerate(numbered):
                if number == len(numbered) - 1:
                    before_last()
                self._chunk(f"data: {json.dumps(event)}\n\n".encode())
            if done_marker:
                self._chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a fan-out connects all at once, as clients of a provider do

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer is normal traffic for a provider, not a failure."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeProvider:
    """Serves on 127.0.0.1 in a daemon thread of this process; see the module docstring."""

    def __init__(self, **knobs: Any) -> None:
        self._provider = _Provider(Knobs(**knobs))
        self._server = _Server(("127.0.0.1", 0), _handler(self._provider))
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeProvider:
        threading.Thread(target=self._server.serve_forever, name="fake-provider", daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def stats(self) -> Stats:
        with self._provider.lock:
            return Stats(**asdict(self._provider.stats))

    def configure(self, **knobs: Any) -> None:
        with self._provider.lock:
            for key, value in knobs.items():
                setattr(self._provider.knobs, key, value)

    def reset(self) -> None:
        self._provider.reset()

    @staticmethod
    @contextlib.contextmanager
    def in_subprocess(**knobs: Any) -> Iterator[RemoteProvider]:
        """The same server in a process of its own, read and configured over HTTP."""
        arguments = [f"--{key.replace('_', '-')}={value}" for key, value in knobs.items()]
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_provider", *arguments],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            yield RemoteProvider(process.stdout.readline().strip())
        finally:
            process.terminate()
            process.wait(10)
            if process.stdout is not None:
                process.stdout.close()


@dataclass(frozen=True)
class RemoteProvider:
    base_url: str

    def _call(self, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        root = self.base_url.removesuffix("/v1")
        request = urllib.request.Request(
            f"{root}{path}", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def stats(self) -> Stats:
        return Stats(**self._call("/_fake/stats"))

    def configure(self, **knobs: Any) -> None:
        self._call("/_fake/config", knobs)

    def reset(self) -> None:
        self._call("/_fake/reset", {})


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible provider on loopback.")
    parser.add_argument("--latency-s", type=float, default=0.0)
    parser.add_argument("--max-in-flight", type=int, default=1_000_000)
    parser.add_argument("--retry-after-s", type=float, default=1.0)
    options = parser.parse_args()
    with FakeProvider(**vars(options)) as provider:
        print(provider.base_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()

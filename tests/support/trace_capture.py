"""A LangSmith endpoint on loopback that keeps the runs the real langsmith SDK posts to it.

It answers `/info` without the multipart endpoint, so the SDK sends plain JSON batches
(`POST /runs/batch`, or single `POST /runs` and `PATCH /runs/<id>`); every other route answers
an empty object. Runs are merged by id, the way LangSmith folds a run's patch into its post.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langsmith import Client

API_KEY = "lsv2-tracing-tests"
INFO = {
    "version": "0.10.0",
    "batch_ingest_config": {
        "use_multipart_endpoint": False,
        "size_limit": 100,
        "size_limit_bytes": 20_971_520,
        "scale_up_qsize_trigger": 1000,
        "scale_up_nthreads_limit": 16,
        "scale_down_nempty_trigger": 4,
    },
}


@dataclass
class CapturedRun:
    """One run as the SDK described it, post and patches merged."""

    id: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.fields.get("name"))

    @property
    def parent_id(self) -> str | None:
        parent = self.fields.get("parent_run_id")
        return str(parent) if parent else None

    @property
    def trace_id(self) -> str:
        return str(self.fields.get("trace_id"))

    @property
    def run_type(self) -> str:
        return str(self.fields.get("run_type"))

    @property
    def metadata(self) -> dict[str, Any]:
        return dict((self.fields.get("extra") or {}).get("metadata") or {})

    @property
    def tags(self) -> list[str]:
        return list(self.fields.get("tags") or [])

    @property
    def project(self) -> str | None:
        project = self.fields.get("session_name")
        return str(project) if project else None


class TraceCapture:
    """The runs received so far, by id."""

    def __init__(self) -> None:
        self._runs: dict[str, CapturedRun] = {}
        self._lock = threading.Lock()
        self.url = ""

    def environment(self, project: str) -> dict[str, str]:
        """The standard `LANGSMITH_*` variables of a process that traces here, to `project`."""
        return {
            "LANGSMITH_TRACING": "true",
            "LANGSMITH_ENDPOINT": self.url,
            "LANGSMITH_API_KEY": API_KEY,
            "LANGSMITH_PROJECT": project,
        }

    def client(self) -> Client:
        """A LangSmith client of this endpoint, for a tracer of the test process's own."""
        return Client(api_url=self.url, api_key=API_KEY)

    def keep(self, fields: dict[str, Any]) -> None:
        run_id = str(fields["id"])
        with self._lock:
            run = self._runs.setdefault(run_id, CapturedRun(run_id))
            run.fields.update({key: value for key, value in fields.items() if value is not None})

    def runs(self) -> list[CapturedRun]:
        with self._lock:
            return list(self._runs.values())

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()

    def children(self, run: CapturedRun) -> list[CapturedRun]:
        found = [child for child in self.runs() if child.parent_id == run.id]
        return sorted(found, key=lambda child: str(child.fields.get("dotted_order")))

    def named(self, name: str) -> list[CapturedRun]:
        return [run for run in self.runs() if run.name == name]

    def render(self, root: CapturedRun, *, depth: int = 0, skip: frozenset[str] = frozenset()) -> list[str]:
        """The tree under `root` as indented names, one line a run; `skip` names runs whose
        subtrees are left out (LangGraph's internal channel writes, say)."""
        lines = [f"{'  ' * depth}{root.name} ({root.run_type})"]
        for child in self.children(root):
            if child.name not in skip:
                lines.extend(self.render(child, depth=depth + 1, skip=skip))
        return lines

    @contextmanager
    def serving(self) -> Iterator[TraceCapture]:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> Any:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                return json.loads(raw) if raw else {}

            def _answer(self, payload: object) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer(INFO if self.path.rstrip("/").endswith("/info") else {})

            def do_POST(self) -> None:
                body = self._body()
                if self.path.endswith("/runs/batch"):
                    for run in [*body.get("post", []), *body.get("patch", [])]:
                        capture.keep(run)
                elif self.path.endswith("/runs"):
                    capture.keep(body)
                self._answer({})

            def do_PATCH(self) -> None:
                body = self._body()
                if "/runs/" in self.path:
                    capture.keep({**body, "id": self.path.rsplit("/", 1)[-1]})
                self._answer({})

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # The SDK keeps its connections open: closing must not wait for their handler threads.
        server.daemon_threads = True
        server.block_on_close = False
        thread = threading.Thread(target=server.serve_forever, name="trace-capture", daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()

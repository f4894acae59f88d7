"""`taskforce demo`: fan a log analysis out over the worker pool, one delegation per service.

The inputs are generated here (deterministic, 100 KB to 1 MB each) and put on the shared files,
where every worker reads them; each subagent writes its full analysis next to them and
returns a line; the main agent writes a summary. The results are copied to the data directory
before the embedded Redis, and everything in it, goes away.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deepagents.backends.protocol import BackendProtocol
from rich.console import Console

from orchestrator.session import RunOutcome, new_run_id, run_prompt
from shared.files import read_text, shared_files
from shared.settings import Settings
from taskforce_demo.agents import ANALYST, REGISTRY
from taskforce_demo.service_logs import SERVICES, generate_log

INPUTS_DIR = "/inputs/logs"
RESULTS_DIR = "/results"
SUMMARY_PATH = f"{RESULTS_DIR}/SUMMARY.md"


@dataclass(frozen=True)
class DemoOutcome:
    run: RunOutcome
    services: tuple[str, ...]
    exported_to: Path


def demo_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"subagents": REGISTRY})


def upload_inputs(backend: BackendProtocol, services: tuple[str, ...]) -> int:
    logs = [(f"{INPUTS_DIR}/{service}.log", generate_log(service).encode()) for service in services]
    for response in backend.upload_files(logs):
        if response.error:
            raise OSError(f"could not upload {response.path}: {response.error}")
    return sum(len(content) for _, content in logs)


def demo_prompt(services: tuple[str, ...]) -> str:
    items = "\n".join(
        f"- Analyse the service log {INPUTS_DIR}/{service}.log and write the full analysis "
        f"to {RESULTS_DIR}/{service}.md"
        for service in services
    )
    return (
        f"You coordinate an incident review of {len(services)} services. Delegate every item "
        f"below to the {ANALYST} subagent, all in one turn. When the reports are back, write a "
        f"summary of every service's headline to {SUMMARY_PATH} and answer with the services "
        f"that need attention.\n\n{items}\n"
    )


def export_results(backend: BackendProtocol, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    listing = backend.ls(RESULTS_DIR)
    for entry in listing.entries or []:
        if not entry.get("is_dir"):
            path = entry["path"]
            (destination / Path(path).name).write_text(read_text(backend, path))


def run_demo(settings: Settings, console: Console, services: tuple[str, ...] = SERVICES) -> DemoOutcome:
    """Run the demo on `settings`, which must point at a Redis with workers serving the demo
    registry (see `demo_settings`)."""
    run_id = new_run_id()
    workspace = shared_files(settings).for_run(run_id)
    input_bytes = upload_inputs(workspace, services)
    console.print(
        f"Uploaded {len(services)} service logs ({input_bytes / 1e6:.1f} MB) to {INPUTS_DIR} "
        f"in the workspace of {run_id}."
    )
    run = run_prompt(settings, demo_prompt(services), console, run_id=run_id)
    exported = settings.data_dir / "demo" / "results"
    export_results(workspace, exported)
    return DemoOutcome(run=run, services=services, exported_to=exported)

"""`taskforce`: run the main agent, run a worker, run the demo, look at the shared files."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import Annotated, Any, NoReturn

import click
import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from orchestrator.demo import demo_settings, run_demo
from orchestrator.embedded import EmbeddedError, local_cluster
from orchestrator.files_cli import files_cli
from orchestrator.progress import delegation_table
from orchestrator.session import run_prompt
from shared.celery_app import BrokerConfigError, worker_command
from shared.context import ContextError
from shared.files import FilesConfigError
from shared.models import ModelConfigError, is_offline
from shared.registry import RegistryError
from shared.settings import Settings

cli = typer.Typer(
    help="Run deepagents subagents as Celery jobs on worker pools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cli.add_typer(files_cli, name="files")
# Piped output (CI logs, files) gets room for the delegation table instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
# Mistakes in configuration or input: shown as one clear line, not a traceback.
_USER_ERRORS = (
    EmbeddedError,
    RegistryError,
    ContextError,
    ModelConfigError,
    BrokerConfigError,
    FilesConfigError,
)

INTERRUPTED = 130

WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-w",
        help="Local worker processes to start (default: TASKFORCE_WORKERS without TASKFORCE_REDIS_URL, "
        "none with it).",
    ),
]
ConcurrencyOption = Annotated[
    int | None, typer.Option("--concurrency", "-c", help="Delegations each local worker runs at once.")
]
ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Main and subagent model, e.g. openai:gpt-4.1-mini.")
]


def _settings(**overrides: Any) -> Settings:
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def _local_workers(settings: Settings, workers: int | None) -> int:
    if workers is not None:
        return workers
    return settings.workers if settings.redis_url is None else 0


def _announce(settings: Settings, workers: int) -> None:
    where = "a private Redis (embedded mode)" if settings.redis_url is None else settings.redis_url
    console.print(
        f"Broker and shared files: {where}; local workers: {workers} × {settings.worker_concurrency}"
    )
    if is_offline(settings.model):
        console.print(
            "[yellow]Model: offline[/], a deterministic stand-in that needs no API key. "
            "Set TASKFORCE_MODEL (e.g. openai:gpt-4.1-mini) to use a real model."
        )
    else:
        console.print(f"Model: {settings.model}")


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@cli.command()
def run(
    prompt: Annotated[str, typer.Argument(help="What the main agent should do.")],
    subagents: Annotated[
        str | None,
        typer.Option("--subagents", "-s", help="Registry import path, e.g. myapp.agents:SUBAGENTS."),
    ] = None,
    workers: WorkersOption = None,
    concurrency: ConcurrencyOption = None,
    model: ModelOption = None,
) -> None:
    """Run the main agent once on PROMPT; print its answer and a table of its delegations."""
    settings = _settings(subagents=subagents, worker_concurrency=concurrency, model=model)
    count = _local_workers(settings, workers)
    _announce(settings, count)
    with local_cluster(settings, count) as live:
        outcome = run_prompt(live, prompt, console)
    console.print(Panel(Text(outcome.answer or "(no answer)"), title="Answer"))
    console.print(delegation_table(outcome.reports))
    console.print(f"{len(outcome.reports)} delegations in {outcome.elapsed_s:.1f} s; run id {outcome.run_id}")


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """Run a worker against TASKFORCE_REDIS_URL. Any `celery worker` option passes through,
    e.g. `taskforce worker -Q taskforce.researcher --concurrency 16`."""
    settings = Settings()
    if settings.redis_url is None:
        raise BrokerConfigError(
            "`taskforce worker` needs TASKFORCE_REDIS_URL, the Redis the orchestrator uses "
            "(e.g. redis://host:6379/0); the embedded mode starts its own workers"
        )
    defaults = ["--pool", settings.worker_pool, "--concurrency", str(settings.worker_concurrency), "--events"]
    command = worker_command(*defaults, *ctx.args)
    os.execv(command[0], command)


@cli.command()
def demo(
    workers: WorkersOption = None,
    concurrency: ConcurrencyOption = None,
    model: ModelOption = None,
) -> None:
    """Analyse two dozen generated service logs in parallel on the worker pool."""
    settings = demo_settings(_settings(worker_concurrency=concurrency, model=model))
    count = _local_workers(settings, workers)
    _announce(settings, count)
    with local_cluster(settings, count) as live:
        outcome = run_demo(live, console)
    console.print(Panel(Text(outcome.run.answer or "(no answer)"), title="Main agent's answer"))
    console.print(delegation_table(outcome.run.reports))
    ok = sum(report.status == "ok" for report in outcome.run.reports)
    console.print(
        f"{ok} of {len(outcome.services)} services analysed in {outcome.run.elapsed_s:.1f} s. "
        f"Full analyses and SUMMARY.md: {outcome.exported_to}"
    )


def main() -> None:
    _stop_on_sigterm()
    try:
        # Not standalone, so that errors are reported here; Typer turns Ctrl-C into exit code 130
        # once the `with` blocks above have stopped everything.
        code = cli(standalone_mode=False)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except _USER_ERRORS as error:
        console.print(f"[red]error:[/] {error}", highlight=False)
        sys.exit(2)
    if code == INTERRUPTED:
        console.print("[yellow]interrupted: everything started for this run has been stopped[/]")
    sys.exit(code if isinstance(code, int) else 0)

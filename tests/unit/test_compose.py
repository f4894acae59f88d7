"""docker-compose.yml as compose itself renders it: a deployment, not a sketch. No Docker engine is
needed, only `docker-compose` (Debian's package; `.ci/run` installs it) or `docker compose`."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import Settings
from tests.support.environment import clear_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
REQUIRED = {
    "MINIO_ROOT_PASSWORD": "minio-PASSWORD-1",
    "POSTGRES_PASSWORD": "postgres-PASSWORD-2",
    "TASKFORCE_FLOWER_BASIC_AUTH": "ops:flower-PASSWORD-3",
}
TASKFORCE_SERVICES = ("worker", "main-worker", "flower", "orchestrator", "pool-metrics")


@cache
def _compose() -> tuple[str, ...] | None:
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ("docker", "compose")
    return None


def _render(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """Renders a copy in an empty directory with only these variables, so neither a developer's
    `.env` nor their exports change what is checked."""
    compose = _compose()
    if compose is None:
        message = "neither docker-compose nor `docker compose` is installed (apt-get install docker-compose)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yml")
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **variables}
    return subprocess.run(
        [*compose, "config"], cwd=tmp_path, env=environment, capture_output=True, text=True, check=False
    )


def _environment(service: dict[str, Any]) -> dict[str, str | None]:
    values = service.get("environment") or {}
    if isinstance(values, list):
        return {key: value for key, _, value in (item.partition("=") for item in values)}
    return dict(values)


def _mount_points(service: dict[str, Any]) -> set[str]:
    """Where volumes are mounted, in compose v1's short syntax or v2's long one."""
    volumes = service.get("volumes") or []
    return {volume["target"] if isinstance(volume, dict) else volume.split(":")[1] for volume in volumes}


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rendered = _render(tmp_path_factory.mktemp("compose"), **REQUIRED)
    assert rendered.returncode == 0, rendered.stderr
    return dict(yaml.safe_load(rendered.stdout)["services"])


def test_every_service_of_the_deployment_is_there(services: dict[str, Any]) -> None:
    assert set(services) == {
        "redis",
        "minio",
        "minio-init",
        "postgres",
        "worker",
        "main-worker",
        "flower",
        "orchestrator",
        "pool-metrics",
        "prometheus",
    }


def test_no_container_gets_an_empty_string_for_a_variable(services: dict[str, Any]) -> None:
    """An unset variable must be absent (null: compose passes nothing), never "": an empty
    OPENAI_BASE_URL breaks every OpenAI call."""
    empty = [
        f"{name}.{key}"
        for name, service in services.items()
        for key, value in _environment(service).items()
        if value == ""
    ]
    assert empty == []


def test_variables_set_for_compose_reach_the_taskforce_services(tmp_path: Path) -> None:
    rendered = _render(tmp_path, **REQUIRED, OPENAI_BASE_URL="http://llm:8000/v1", TASKFORCE_MODEL="openai:m")
    services = yaml.safe_load(rendered.stdout)["services"]

    for name in TASKFORCE_SERVICES:
        assert _environment(services[name])["OPENAI_BASE_URL"] == "http://llm:8000/v1"
        assert _environment(services[name])["TASKFORCE_MODEL"] == "openai:m"


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_a_missing_password_stops_compose_naming_it(tmp_path: Path, variable: str) -> None:
    rendered = _render(tmp_path, **{key: value for key, value in REQUIRED.items() if key != variable})

    assert rendered.returncode != 0
    assert variable in rendered.stderr


def test_redis_keeps_its_data_append_only_on_a_volume(services: dict[str, Any]) -> None:
    redis = services["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert "/data" in _mount_points(redis)


def test_postgres_and_minio_keep_their_data_on_volumes(services: dict[str, Any]) -> None:
    assert "/var/lib/postgresql/data" in _mount_points(services["postgres"])
    assert "/data" in _mount_points(services["minio"])


@pytest.mark.parametrize("name", ["worker", "main-worker"])
def test_workers_can_be_scaled_each_with_a_name_of_its_own(services: dict[str, Any], name: str) -> None:
    worker = services[name]
    command = worker["command"]
    assert command[:2] == ["taskforce", name]
    # A fixed host name, container name or port would be shared by every replica; the name
    # `taskforce worker` chooses holds the container's host name (%h).
    assert not {"hostname", "container_name", "ports"} & set(worker)
    for flag in ("-n", "--hostname"):
        if flag in command:
            assert "%h" in command[command.index(flag) + 1]


def test_the_taskforce_services_share_the_broker_and_the_files_on_minio(services: dict[str, Any]) -> None:
    environments = {name: _environment(services[name]) for name in TASKFORCE_SERVICES}
    assert {env["TASKFORCE_REDIS_URL"] for env in environments.values()} == {"redis://redis:6379/0"}
    for name in ("worker", "main-worker", "orchestrator"):
        env = environments[name]
        assert str(env["TASKFORCE_FILES_URL"]).startswith("s3://")
        assert env["AWS_ENDPOINT_URL_S3"] == "http://minio:9000"
        assert env["AWS_SECRET_ACCESS_KEY"] == REQUIRED["MINIO_ROOT_PASSWORD"]
    bucket = str(environments["worker"]["TASKFORCE_FILES_URL"]).removeprefix("s3://").split("/")[0]
    assert f"mc mb --ignore-existing local/{bucket}" in " ".join(services["minio-init"]["command"])
    assert services["worker"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_flower_runs_behind_basic_auth(services: dict[str, Any]) -> None:
    flower = services["flower"]
    assert flower["command"][:2] == ["taskforce", "flower"]
    assert _environment(flower)["TASKFORCE_FLOWER_BASIC_AUTH"] == REQUIRED["TASKFORCE_FLOWER_BASIC_AUTH"]
    assert "flower-PASSWORD-3" not in " ".join(flower["command"])


def test_the_orchestrator_runs_the_mounted_batch_with_checkpoints_on_postgres(
    services: dict[str, Any],
) -> None:
    orchestrator = services["orchestrator"]
    assert orchestrator["command"] == [
        "taskforce",
        "batch",
        "/batches/input.jsonl",
        "--out",
        "/batches/results.jsonl",
    ]
    assert "/batches" in _mount_points(orchestrator)
    database_url = str(_environment(orchestrator)["TASKFORCE_DATABASE_URL"])
    assert database_url.startswith(f"postgresql://taskforce:{REQUIRED['POSTGRES_PASSWORD']}@postgres:5432/")
    assert orchestrator["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Submitted runs are checkpointed in the same database, whichever main-run worker takes them.
    assert _environment(services["main-worker"])["TASKFORCE_DATABASE_URL"] == database_url


@pytest.mark.parametrize("name", TASKFORCE_SERVICES)
def test_each_taskforce_service_environment_is_valid_settings(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_settings(monkeypatch)
    for variable, value in _environment(services[name]).items():
        if value is not None:
            monkeypatch.setenv(variable, value)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    assert settings.redis_url == "redis://redis:6379/0"


def test_prometheus_scrapes_both_kinds_of_worker_and_the_pools_metrics(services: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    (workers,) = jobs["taskforce-workers"]["dns_sd_configs"]
    worker_port = _environment(services["worker"])["TASKFORCE_METRICS_PORT"]
    assert (workers["names"], str(workers["port"])) == (["worker"], worker_port)
    (main_workers,) = jobs["taskforce-main-workers"]["dns_sd_configs"]
    main_worker_port = _environment(services["main-worker"])["TASKFORCE_METRICS_PORT"]
    assert (main_workers["names"], str(main_workers["port"])) == (["main-worker"], main_worker_port)
    (pool,) = jobs["taskforce-pool"]["static_configs"]
    assert pool["targets"] == [f"pool-metrics:{services['pool-metrics']['command'][-1]}"]
    assert services["pool-metrics"]["command"][:3] == ["taskforce", "metrics", "--serve"]
    volumes = services["prometheus"]["volumes"]
    mounted = {volume["source"] if isinstance(volume, dict) else volume.split(":")[0] for volume in volumes}
    assert any(source.endswith("deploy/prometheus/prometheus.yml") for source in mounted)

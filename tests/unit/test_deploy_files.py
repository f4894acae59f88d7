"""The files in deploy/ that a user applies as they are: they must name what taskforce really
exposes, or a dashboard shows nothing and an autoscaler watches the wrong list."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from shared.celery_app import queue_for
from shared.metrics import COUNTED
from shared.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GAUGES = {
    "taskforce_queue_depth",
    "taskforce_queue_oldest_age_seconds",
    "taskforce_workers",
    "taskforce_delegations_running",
    "taskforce_dead_letters",
}


def _exposed() -> set[str]:
    """Every sample name `taskforce metrics` can print."""
    names = set(GAUGES)
    for family in COUNTED:
        if family.kind == "counter":
            names.add(f"{family.name}_total")
        else:
            names |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
    return names


def test_the_grafana_dashboard_parses_and_names_only_metrics_that_exist() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "taskforce.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    named = {name for expr in expressions for name in re.findall(r"taskforce_[a-z_]+", expr)}

    assert named - _exposed() == set()
    # Every metric taskforce has is on the dashboard, one way or another.
    assert {re.sub(r"_(bucket|sum|count)$", "", name) for name in _exposed()} <= {
        re.sub(r"_(bucket|sum|count)$", "", name) for name in named
    }


def test_the_keda_scaler_watches_the_queue_its_workers_consume() -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "worker-autoscaling.yaml").read_text()))
    deployment, scaled = (
        next(d for d in documents if d["kind"] == kind) for kind in ("Deployment", "ScaledObject")
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    consumed = container["args"][container["args"].index("-Q") + 1]
    (trigger,) = scaled["spec"]["triggers"]

    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == consumed == queue_for(Settings(_env_file=None), "writer")  # type: ignore[call-arg]

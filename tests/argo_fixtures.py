"""Shared helpers for the Argo/Kubernetes tests: rendered specs and a tiny Argo DAG simulator."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from xdetox.executors.argo.config import ClusterConfig, load_cluster_config
from xdetox.executors.argo.render import RenderOptions, render, render_template
from xdetox.plan import Plan
from xdetox.plan import plan as make_plan
from xdetox.spec import load_spec
from xdetox.spec.models import ExperimentSpec

ROOT = Path(__file__).resolve().parents[1]
CFG_PATH = ROOT / "argo" / "cluster-config.yaml"


def cluster_config() -> ClusterConfig:
    return load_cluster_config(CFG_PATH)


@cache
def planned(spec_path: str) -> tuple[ExperimentSpec, Plan]:
    spec = load_spec(ROOT / spec_path)
    return spec, make_plan(spec)


def rendered(spec_path: str, options: RenderOptions = RenderOptions(), template: bool = False,
             cfg: ClusterConfig | None = None) -> dict[str, Any]:
    spec, plan = planned(spec_path)
    fn = render_template if template else render
    return fn(plan, spec, cfg or cluster_config(), options)


def templates(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in wf["spec"]["templates"]}


def dag(wf: dict[str, Any]) -> list[dict[str, Any]]:
    return templates(wf)[wf["spec"]["entrypoint"]]["dag"]["tasks"]


def simulate(
    wf: dict[str, Any], overrides: dict[str, str], invoke: Callable[[list[str]], int], workflow_name: str = "wf-abcde",
) -> list[tuple[str, int]]:
    """Run a rendered Workflow the way Argo would, one container command per pod, in DAG order.

    Substitutes workflow parameters, task arguments, ``{{item.*}}`` of withItems and
    ``{{workflow.name}}``; stops at the first failing pod (Argo's default fail-fast). Returns
    (task name, exit code) per pod.
    """
    spec = wf["spec"]
    params = {p["name"]: p.get("value", "") for p in spec["arguments"]["parameters"]}
    params.update(overrides)
    tmpl = templates(wf)
    tasks = dag(wf)
    done: set[str] = set()
    ran: list[tuple[str, int]] = []

    def sub(text: str, inputs: dict[str, str]) -> str:
        text = text.replace("{{workflow.name}}", workflow_name)
        text = re.sub(r"\{\{workflow\.parameters\.([\w-]+)\}\}", lambda m: params[m.group(1)], text)
        return re.sub(r"\{\{inputs\.parameters\.([\w-]+)\}\}", lambda m: inputs[m.group(1)], text)

    while len(done) < len(tasks):
        ready = [t for t in tasks if t["name"] not in done and all(d in done for d in t.get("dependencies", []))]
        assert ready, "DAG is stuck: a dependency never completes"
        for task in ready:
            container = tmpl[task["template"]]["container"]
            for item in task.get("withItems") or [None]:
                inputs = {}
                for a in (task.get("arguments") or {}).get("parameters", []):
                    value = a["value"]
                    if item is not None:
                        value = re.sub(r"\{\{item\.(\w+)\}\}", lambda m, it=item: str(it[m.group(1)]), value)
                    inputs[a["name"]] = value
                argv = [sub(x, inputs) for x in container["command"] + container.get("args", [])]
                rc = invoke(argv)
                ran.append((task["name"], rc))
                if rc != 0:
                    return ran
            done.add(task["name"])
    return ran

"""Step kinds declare themselves: the runner and the Argo renderer read the declaration."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xdetox.executors.argo.render import role_for
from xdetox.kinds import steps as step_kinds
from xdetox.spec.models import StepResources
from xdetox.steps import registry


def toy_run(ctx: Any) -> dict[str, Any]:
    return {"toy": True}


@pytest.fixture
def toy_kind() -> Iterator[step_kinds.StepKind]:
    kind = step_kinds.register(step_kinds.StepKind(
        name="toy", run=f"{__name__}:toy_run", image="score", resources="evaluate", gpu_role="generate"))
    yield kind
    step_kinds.unregister("toy")


def test_builtin_kinds_in_plan_order() -> None:
    assert [k.name for k in step_kinds.all_kinds()][:10] == [
        "build_model", "train", "generate", "score", "perplexity", "align", "analyze", "analyze_score", "evaluate",
        "report"]
    assert {k.name for k in step_kinds.all_kinds() if k.sharded} == {"generate", "score", "perplexity"}
    assert {k.name for k in step_kinds.all_kinds() if k.shm} == {"generate", "train"}


def test_roles_come_from_the_declaration(toy_kind: step_kinds.StepKind) -> None:
    assert role_for("score", StepResources(gpu=1)) == "score-gpu"
    assert role_for("score", StepResources(gpu=0)) == "score-cpu"
    assert role_for("train", StepResources(gpu=1)) == "train" and role_for("train", StepResources()) == "cpu"
    assert role_for("evaluate", StepResources(gpu=1)) == "cpu"
    assert role_for("toy", StepResources(gpu=2)) == "generate" and role_for("toy", StepResources()) == "cpu"
    assert role_for("publish", StepResources()) == "cpu"  # the workflow's own tasks


def test_runner_resolves_a_registered_kinds_entry_point(toy_kind: step_kinds.StepKind) -> None:
    assert registry.resolve("toy") is toy_run
    step_kinds.unregister("toy")
    with pytest.raises(KeyError, match="unknown step kind 'toy'"):
        registry.resolve("toy")


def test_declaration_checks_its_entry_point() -> None:
    with pytest.raises(ValueError, match="module:function"):
        step_kinds.StepKind(name="x", run="no-colon", image="score", resources="evaluate")


def test_declaration_checks_its_name_and_planning_hook() -> None:
    with pytest.raises(ValueError, match="scope and plan go together"):
        step_kinds.StepKind(name="x", run="m:f", image="score", resources="evaluate", scope="setting")
    with pytest.raises(ValueError, match="scope must be one of"):
        step_kinds.StepKind(name="x", run="m:f", image="score", resources="evaluate", scope="shard",  # type: ignore[arg-type]
                            plan=lambda s: None)
    with pytest.raises(ValueError, match="lower-case letters"):
        step_kinds.register(step_kinds.StepKind(name="Bad-Kind", run="m:f", image="score", resources="evaluate"))
    assert "Bad-Kind" not in step_kinds.names()


def test_step_refuses_a_manifest_of_an_unregistered_kind(tmp_path: Path, toy_kind: step_kinds.StepKind) -> None:
    """Kinds are open, but not anything goes: a manifest's kind must be registered where it runs."""
    from typer.testing import CliRunner

    from xdetox.cli import app
    from xdetox.store import open_store

    uri = (tmp_path / "s").as_uri()
    store = open_store(uri).child("runs/r")
    for key, kind in (("k1", "toy"), ("k2", "nope")):
        store.put_text(f"steps/{key}/manifest.json", json.dumps(
            {"kind": kind, "key": key, "run_id": "r", "label": "x", "output_prefix": f"out/{key}"}))
    runner = CliRunner()
    res = runner.invoke(app, ["step", f"{uri}/runs/r/steps/k2/manifest.json"])
    assert res.exit_code == 2 and "unknown step kind 'nope'" in res.output and "toy" in res.output
    res = runner.invoke(app, ["step", f"{uri}/runs/r/steps/k1/manifest.json"])  # the registered one runs
    assert res.exit_code == 0, res.output
    assert json.loads(store.get_bytes("steps/k1/_SUCCESS.json"))["info"] == {"toy": True}


def test_builtin_params_models_accept_what_their_hooks_make_and_nothing_else() -> None:
    """Every job's plan passes the kinds' params models (the planner checks each step); a field the
    model does not know, or a wrong type, is refused."""
    from pydantic import ValidationError

    from xdetox.plan import plan
    from xdetox.spec import load_spec

    p = plan(load_spec("jobs/smoke.yaml"))
    missing = [k.name for k in step_kinds.all_kinds() if k.params_model is None]
    assert not missing, f"built-in step kinds without a params_model (see docs/CONTRACTS.md): {missing}"
    assert {s.kind for s in p.steps} == {"build_model", "train", "generate", "score", "evaluate", "report"}
    gen = next(s for s in p.steps if s.kind == "generate")
    model = step_kinds.get("generate").params_model
    assert model is not None
    model.model_validate(gen.params)
    with pytest.raises(ValidationError, match="bogus"):
        model.model_validate({**gen.params, "bogus": 1})
    with pytest.raises(ValidationError, match="arm"):
        model.model_validate({**gen.params, "model": {**gen.params["model"], "arm": "half-tuned"}})


def test_score_params_check_the_scorer_against_the_registered_kinds() -> None:
    from pydantic import ValidationError

    model = step_kinds.get("score").params_model
    assert model is not None
    model.model_validate({"scorer": {"kind": "lexicon"}, "perplexity": None})
    with pytest.raises(ValidationError, match="perplexity"):  # its own step kind now
        model.model_validate({"scorer": {"kind": "lexicon"}, "perplexity": {"reference": "self"}})
    with pytest.raises(ValidationError, match="vibes"):
        model.model_validate({"scorer": {"kind": "vibes"}, "perplexity": None})


def test_pod_size_comes_from_the_spec_entry_else_the_declared_default() -> None:
    from xdetox.spec.models import ResourcesSpec

    spec_res = ResourcesSpec()
    assert step_kinds.get("train").pod_resources(spec_res) == spec_res.train
    own = step_kinds.StepKind(name="x", run="m:f", image="score", resources="x",
                              default_resources=StepResources(cpu="3", memory="1Gi"))
    assert own.pod_resources(spec_res) == StepResources(cpu="3", memory="1Gi")
    bare = step_kinds.StepKind(name="y", run="m:f", image="score", resources="y")
    with pytest.raises(ValueError, match="spec.resources has no entry 'y' and the kind declares no default"):
        bare.pod_resources(spec_res)

"""Step kinds declare themselves: the runner and the Argo renderer read the declaration."""

from __future__ import annotations

from collections.abc import Iterator
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
    assert [k.name for k in step_kinds.all_kinds()][:8] == [
        "build_model", "train", "generate", "score", "align", "analyze", "evaluate", "report"]
    assert {k.name for k in step_kinds.all_kinds() if k.sharded} == {"generate", "score"}
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

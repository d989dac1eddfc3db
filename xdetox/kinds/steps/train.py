"""Step kind ``train``: DPO or SFT fine-tuning of one model on one training setting (checkpointed, resumable).

Planned per model unless the setting's training method is ``none``; adds the model's tuned arm.
Implementation: xdetox.steps.train.run.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from xdetox.kinds.steps import register
from xdetox.kinds.steps.base import StepKind
from xdetox.kinds.steps.planning import Arm, ModelScope, model_params
from xdetox.kinds.steps.refs import ModelRef
from xdetox.spec.models import TrainingSpec
from xdetox.spec.recipes import resolve, trainer_settings


class TrainParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelRef  # the base model
    training: TrainingSpec  # the setting's training section, its seed resolved


def explain(params: dict[str, Any]) -> dict[str, Any]:
    """What its trainer will be given, resolved from preset, model family and spec
    (``xdetox.spec.recipes``), under TRL's names."""
    hyper, peft = resolve(params["training"], (params.get("model") or {}).get("source"))
    return {"trainer_settings": trainer_settings(hyper, peft)}


def plan(scope: ModelScope) -> None:
    m, s = scope.model, scope.spec
    if s.training.method == "none":
        return
    training = s.training.model_dump(mode="json")
    training["seed"] = s.training.seed if s.training.seed is not None else s.seed
    langs = "+".join(s.training.data.languages) if s.training.data else ""
    base = scope.base
    key = scope.add(
        "train", f"train {m.id} {s.training.method} on {langs}", {"model": base.params, "training": training},
        {"base_model": base.inputs["model"]} if base.inputs else {},
    )
    scope.setting.train_keys.append(key)
    label = f"{s.training.method}-{langs}"
    scope.tuned = Arm(f"tuned:{label}", {**model_params(m, "tuned"), "tuned": label}, {"model": [key]})


KIND = register(StepKind(
    name="train", run="xdetox.steps.train:run", image="train", resources="train",
    gpu_role="train", shm=True,
    estimate="xdetox.plan.estimate:estimate_train", scope="model", plan=plan, output_dir="models",
    params_model=TrainParams, explain=explain,
))

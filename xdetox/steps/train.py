"""The train step: DPO or SFT of a base model on the spec's training data.

params: {"model": model params, "training": TrainingSpec dump with its seed resolved}.
inputs: "base_model" (the build_model step of a builtin model; "model" is accepted too), else
the base is ``params["model"]["source"]``.
outputs (under models/<key>/): a servable checkpoint (merged weights, or adapter + base/),
tokenizer, config and training_log.json; the commit record lists every file's sha256.

Preemption: each trainer checkpoint goes to the step's partial state (xdetox.store.partial:
``steps/<key>/partial/checkpoint-N/``, ``partial/LATEST`` names it, written last; progress in
optimizer steps). A rerun downloads it and resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xdetox.steps.context import StepContext
from xdetox.store.partial import PartialState
from xdetox.training import presets
from xdetox.training.data import load_training_set


def _base_folder(ctx: StepContext) -> str:
    for name in ("base_model", "model"):
        if ctx.has_input(name):
            return str(ctx.input_dir(name))
    from xdetox.models.resolve import resolve_model_source

    model = ctx.params["model"]
    base = resolve_model_source(model["source"], model.get("revision"))
    if Path(base).is_dir() and (Path(base) / "adapter_config.json").exists():
        # A base that is itself base + adapter: train on its merged weights.
        from xdetox.models.load import load_causal_lm

        m, tok = load_causal_lm(base, "float32", "cpu")
        merged = ctx.scratch / "merged-base"
        m.save_pretrained(merged)
        tok.save_pretrained(merged)
        return str(merged)
    return base


def _checkpoint_saver(ctx: StepContext, partial: PartialState) -> Callable[[Path], None]:
    """Keep each trainer checkpoint in the step's partial state, its progress in optimizer steps
    (from the trainer_state.json the trainer writes into every checkpoint)."""

    def save(path: Path) -> None:
        try:
            state = json.loads((path / "trainer_state.json").read_text())
            done, partial.total = int(state["global_step"]), int(state["max_steps"])
        except (OSError, ValueError, KeyError):
            done = int(path.name.rpartition("-")[2]) if path.name.rpartition("-")[2].isdigit() else 0
        partial.put_checkpoint(path, done)
        ctx.log(f"checkpoint {path.name} saved to {partial.store.uri}/{partial.prefix}/")

    return save


def run(ctx: StepContext) -> dict[str, Any]:
    training = ctx.params["training"]
    method = training["method"]
    seed = int(training.get("seed") if training.get("seed") is not None else 1234)
    hyper, peft = presets.resolve(training, (ctx.params.get("model") or {}).get("source"))
    # Data first: a bad file fails here, naming file and line, before a model is even loaded.
    ts = load_training_set(training["data"], method, hyper.get("sft_template"), hyper.get("fraction_sampling"))
    ctx.log(f"training data: {len(ts.rows)} rows after filtering (read {ts.read}, dropped {ts.dropped or 'none'})")
    base = _base_folder(ctx)
    partial = ctx.partial("steps")
    resume = partial.latest_checkpoint(ctx.scratch / "resume")

    from xdetox.training.trainer import train

    out = ctx.scratch / "out"
    info = train(base, ts, method, hyper, peft, seed, out, ctx.scratch / "work", resume_from=resume,
                 on_checkpoint=_checkpoint_saver(ctx, partial), log=ctx.log)
    ctx.put_dir("", out)
    partial.clear()
    return info

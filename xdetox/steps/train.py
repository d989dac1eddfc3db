"""The train step: DPO or SFT of a base model on the spec's training data.

params: {"model": model params, "training": TrainingSpec dump with its seed resolved}.
inputs: "base_model" (the build_model step of a builtin model; "model" is accepted too), else
the base is ``params["model"]["source"]``.
outputs (under models/<key>/): a servable checkpoint (merged weights, or adapter + base/),
tokenizer, config and training_log.json; the commit record lists every file's sha256.

Preemption: each trainer checkpoint is copied to ``steps/<key>/partial/checkpoint-N/`` in the
run store and ``partial/LATEST`` names it (written last). A rerun downloads it and resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xdetox.steps.context import StepContext
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


class _Partial:
    """Checkpoints of this step kept in the run store, invisible to readers (no commit record)."""

    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self.prefix = f"steps/{ctx.manifest.key}/partial"
        self.saved = 0

    def save(self, path: Path) -> None:
        store = self.ctx.store
        old = [k for k in store.list(self.prefix + "/") if not k.startswith(f"{self.prefix}/{path.name}/")
               and not k.endswith("/LATEST")]
        for f in sorted(path.rglob("*")):
            if f.is_file():
                store.put_file(f"{self.prefix}/{path.name}/{f.relative_to(path).as_posix()}", f)
        store.put_text(f"{self.prefix}/LATEST", path.name)  # last: the checkpoint is whole
        for k in old:
            store.delete(k)
        self.ctx.log(f"checkpoint {path.name} saved to {store.uri}/{self.prefix}/")
        self.saved += 1

    def latest(self) -> Path | None:
        store = self.ctx.store
        if not store.exists(f"{self.prefix}/LATEST"):
            return None
        name = store.get_text(f"{self.prefix}/LATEST").strip()
        dest = self.ctx.scratch / "resume" / name
        keys = store.list(f"{self.prefix}/{name}/")
        if not keys:
            return None
        for k in keys:
            store.get_file(k, dest / k[len(f"{self.prefix}/{name}/"):])
        return dest

    def clear(self) -> None:
        self.ctx.store.delete_prefix(self.prefix + "/")


def run(ctx: StepContext) -> dict[str, Any]:
    training = ctx.params["training"]
    method = training["method"]
    seed = int(training.get("seed") if training.get("seed") is not None else 1234)
    hyper, peft = presets.resolve(training, (ctx.params.get("model") or {}).get("source"))
    # Data first: a bad file fails here, naming file and line, before a model is even loaded.
    ts = load_training_set(training["data"], method, hyper.get("sft_template"))
    ctx.log(f"training data: {len(ts.rows)} rows after filtering (read {ts.read}, dropped {ts.dropped or 'none'})")
    base = _base_folder(ctx)
    partial = _Partial(ctx)
    resume = partial.latest()

    from xdetox.training.trainer import train

    out = ctx.scratch / "out"
    info = train(base, ts, method, hyper, peft, seed, out, ctx.scratch / "work", resume_from=resume,
                 on_checkpoint=partial.save, log=ctx.log)
    ctx.put_dir("", out)
    partial.clear()
    return info

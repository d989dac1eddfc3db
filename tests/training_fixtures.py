"""Shared helpers for the training tests: a quickly built tiny model, manifests, a round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xdetox.manifest import StepManifest
from xdetox.spec.models import TrainingSpec
from xdetox.steps.context import StepContext
from xdetox.steps.runner import run_step
from xdetox.store import Store

#: a short build: enough for a valid model with real weights; the full recipe is tested as slow
QUICK_BUILD = {"train_steps": 8, "batch_size": 8, "seq_len": 32}


def manifest(kind: str, params: dict[str, Any], inputs: dict[str, list[str]] | None = None,
             run_id: str = "t", prefix: str | None = None) -> StepManifest:
    inputs = inputs or {}
    key = StepManifest.compute_key(kind, params, inputs, None)
    return StepManifest(kind=kind, key=key, run_id=run_id, label=f"{kind} test", params=params,  # type: ignore[arg-type]
                        inputs=inputs, output_prefix=prefix or f"models/{key}")


def model_params() -> dict[str, Any]:
    return {"id": "tiny", "source": "builtin:tiny", "revision": None, "dtype": "auto", "architecture": "auto",
            "arm": "base"}


def train_params(seed: int = 7, **training: Any) -> dict[str, Any]:
    spec = TrainingSpec.model_validate(training)
    dump = spec.model_dump(mode="json")
    dump["seed"] = seed
    return {"model": model_params(), "training": dump}


def publish_tiny(store: Store, folder: Path) -> StepManifest:
    """Put a built tiny model into ``store`` as if a build_model step had committed it."""
    from xdetox.steps import registry

    m = manifest("build_model", {"source": "builtin:tiny", "seed": 1234, "prebuilt": str(folder)})

    def _publish(ctx: StepContext) -> dict[str, Any]:
        ctx.put_dir("", folder)
        return {"prebuilt": True}

    with registry.overridden({"build_model": _publish}):
        run_step(m, store, log=lambda s: None)
    return m


def roundtrip(store: Store, train_manifest: StepManifest) -> tuple[Path, dict[str, str]]:
    """Read a committed train step's outputs back the way a downstream step does (input "model"),
    check every file against the commit record, and return (local folder, {relative name: sha256})."""
    from xdetox.steps.runner import read_commit
    from xdetox.store.files import file_sha256

    rec = read_commit(store, train_manifest.key)
    reader = manifest("generate", {"reader": True}, {"model": [train_manifest.key]}, prefix="generations/x")
    folder = StepContext(reader, store).input_dir("model")
    digests = {}
    for o in rec.outputs:
        rel = o.key[len(train_manifest.output_prefix) + 1:]
        assert file_sha256(folder / rel) == o.sha256, rel
        digests[rel] = o.sha256
    return folder, digests


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def build_tiny_mt5(folder: Path, seed: int = 0) -> Path:
    """A tiny, randomly initialised mT5 (MT5ForConditionalGeneration, one layer each side) with a
    byte-level BPE tokenizer, built offline in well under a second: an encoder-decoder the train,
    generate and perplexity code must tell apart from a causal LM by its config alone."""
    import torch
    from transformers import MT5Config, MT5ForConditionalGeneration

    from tests.scoring_fixtures import build_tokenizer

    tok = build_tokenizer(folder)
    torch.manual_seed(seed)
    cfg = MT5Config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=16, num_layers=1, num_decoder_layers=1,
                    num_heads=2, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                    decoder_start_token_id=tok.pad_token_id)
    MT5ForConditionalGeneration(cfg).save_pretrained(str(folder))
    return folder

"""The train step on the tiny model: DPO and SFT x full, LoRA, QLoRA; store round trip; reload;
determinism; resume after a preemption; bad data fails before training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.training_fixtures import QUICK_BUILD, manifest, publish_tiny, roundtrip, train_params, write_jsonl
from xdetox.steps.runner import run_step
from xdetox.store import Store, open_store
from xdetox.store.partial import PartialState, read_progress
from xdetox.training.jsonl import DataFileError

PARA = {"format": "paradetox", "path": "bundled:paradetox", "languages": ["en"], "split": "train", "max_rows": 16}
FAST = {"max_steps": 2, "batch_size": 4, "max_length": 48, "learning_rate": 1e-3}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from xdetox.models.tiny import build_tiny_model

    folder = tmp_path_factory.mktemp("tiny") / "model"
    build_tiny_model(folder, seed=5, **QUICK_BUILD)
    return folder


def _store(tmp_path: Path, name: str = "r") -> Store:
    return open_store((tmp_path / "store" / "runs" / name).as_uri())


def _train(store: Store, tiny_dir: Path, seed: int = 7, **training: Any) -> tuple[Any, Any]:
    base = publish_tiny(store, tiny_dir)
    m = manifest("train", train_params(seed, **training), {"base_model": [base.key]})
    rec, _ = run_step(m, store, log=lambda s: None)
    return m, rec


def _reload_and_generate(folder: Path) -> None:
    import torch

    from xdetox.models.load import load_causal_lm

    model, tok = load_causal_lm(folder, "float32", "cpu")
    enc = tok(["you are"], return_tensors="pt")
    torch.manual_seed(0)
    out = model.generate(**enc, do_sample=True, max_new_tokens=3, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == enc["input_ids"].shape[1] + 3


@pytest.mark.parametrize("method", ["dpo", "sft"])
@pytest.mark.parametrize("mode", ["full", "lora", "qlora"])
def test_train_modes_roundtrip_and_reload(tmp_path: Path, tiny_dir: Path, method: str, mode: str) -> None:
    store = _store(tmp_path)
    m, rec = _train(store, tiny_dir, method=method, data=PARA, peft={"mode": mode, "r": 4, "alpha": 8},
                    hyper=FAST)
    assert rec.info["steps"] == 2 and rec.info["n_train"] == 16 and rec.info["peft_mode"] == mode
    assert rec.info["final_loss"] is not None and rec.info["tokens_per_second"] > 0
    folder, digests = roundtrip(store, m)
    assert {"model.safetensors", "config.json", "tokenizer.json", "training_log.json"} <= set(digests)
    assert not store.list(f"steps/{m.key}/partial/")
    _reload_and_generate(folder)


def test_lora_unmerged_is_base_plus_adapter(tmp_path: Path, tiny_dir: Path) -> None:
    store = _store(tmp_path)
    m, rec = _train(store, tiny_dir, method="dpo", data=PARA, peft={"mode": "lora", "r": 4, "alpha": 8,
                                                                     "merge": False}, hyper=FAST)
    folder, digests = roundtrip(store, m)
    assert {"adapter_config.json", "adapter_model.safetensors", "base/config.json", "base/model.safetensors"} <= set(digests)
    assert not rec.info["merged"]
    _reload_and_generate(folder)


def test_dpo_is_deterministic(tmp_path: Path, tiny_dir: Path) -> None:
    hyper = {**FAST, "max_steps": 3}
    _, a = _train(_store(tmp_path, "a"), tiny_dir, seed=9, method="dpo", data=PARA, hyper=hyper)
    _, b = _train(_store(tmp_path, "b"), tiny_dir, seed=9, method="dpo", data=PARA, hyper=hyper)

    def weights(rec: Any) -> dict[str, str]:
        return {o.key.rsplit("/", 1)[-1]: o.sha256 for o in rec.outputs if o.key.endswith(".safetensors")}

    assert weights(a) and weights(a) == weights(b)
    assert a.info["final_loss"] == b.info["final_loss"]

    def log_digest(rec: Any) -> str:
        return next(o.sha256 for o in rec.outputs if o.key.endswith("training_log.json"))

    # Two runs take different wall-clock time; the committed log must not show it (issue 14 item 5).
    assert a.info["seconds"] != b.info["seconds"] or a.info["train_seconds"] != b.info["train_seconds"]
    assert log_digest(a) == log_digest(b)


class Preempted(RuntimeError):
    """A simulated preemption, injected by the test into the checkpoint callback."""


def test_resume_after_preemption(tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path)
    hyper = {**FAST, "max_steps": 4, "save_steps": 2}
    real_save = PartialState.put_checkpoint

    def preempted(self: Any, path: Path, done: int) -> None:  # the node goes away right after the first checkpoint
        real_save(self, path, done)
        raise Preempted(f"simulated preemption after {path.name}")

    monkeypatch.setattr(PartialState, "put_checkpoint", preempted)
    with pytest.raises(Preempted):
        _train(store, tiny_dir, method="dpo", data=PARA, peft={"mode": "lora", "r": 4, "alpha": 8}, hyper=hyper)
    m = manifest("train", train_params(7, method="dpo", data=PARA, peft={"mode": "lora", "r": 4, "alpha": 8},
                                       hyper=hyper), {"base_model": [publish_tiny(store, tiny_dir).key]})
    partial = f"steps/{m.key}/partial"
    assert store.get_text(f"{partial}/LATEST") == "checkpoint-2"
    progress = read_progress(store, partial)  # what `xdetox status` shows: 2 of 4 steps
    assert progress is not None and (progress.done, progress.total, progress.unit) == (2, 4, "steps")
    assert not store.exists(f"steps/{m.key}/_SUCCESS.json")
    monkeypatch.setattr(PartialState, "put_checkpoint", real_save)
    rec, _ = run_step(m, store, log=lambda s: None)
    assert rec.info["resumed_from"] == "checkpoint-2" and rec.info["steps"] == 4
    log = json.loads(store.get_text(next(o.key for o in rec.outputs if o.key.endswith("training_log.json"))))
    assert not {"resumed_from", "seconds", "train_seconds", "tokens_per_second", "torch_threads"} & set(log)
    assert not store.list(f"{partial}/")


@pytest.mark.parametrize(
    ("lines", "where"),
    [
        ([{"prompt": "a", "chosen": " b", "rejected": " c"}, '{"prompt": "x", '], ":2: malformed JSON"),
        ([{"prompt": "a", "chosen": " b"}], ":1: missing field 'rejected'"),
        ([], "file is empty"),
    ],
)
def test_bad_data_fails_before_training(tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                        lines: list, where: str) -> None:
    from xdetox.training import trainer

    def _never(*a: Any, **k: Any) -> None:
        raise AssertionError("training started on a bad data file")

    monkeypatch.setattr(trainer, "train", _never)
    f = write_jsonl(tmp_path / "pairs.jsonl", lines)
    store = _store(tmp_path)
    with pytest.raises(DataFileError, match=where) as e:
        _train(store, tiny_dir, method="dpo", data={"format": "pairs-jsonl", "path": str(f)}, hyper=FAST)
    assert str(f) in str(e.value)


def test_checkpoint_roundtrips_through_store(store_uri: str, isolated_cache: Path, tiny_dir: Path) -> None:
    """file:// and S3 (SeaweedFS): the tiny base goes up, the train step downloads it, trains,
    uploads base + adapter, and a downstream reader downloads and reloads it, sha256-checked."""
    store = open_store(store_uri).child("runs/rt")
    m, rec = _train(store, tiny_dir, method="sft", data=PARA, peft={"mode": "lora", "r": 4, "alpha": 8,
                                                                     "merge": False}, hyper=FAST)
    folder, digests = roundtrip(store, m)
    assert {"adapter_model.safetensors", "base/model.safetensors", "tokenizer.json"} <= set(digests)
    if store_uri.startswith("s3://"):
        assert str(folder).startswith(str(isolated_cache))
    _reload_and_generate(folder)

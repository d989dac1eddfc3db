"""Training recipes: paper 1's DPO settings from xg/training/dpo.py, per-family QLoRA targets, paper 2's
per-family scripts, precedence, and the trainer receiving exactly the settings `xdetox plan --json` shows."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from tests.training_fixtures import QUICK_BUILD, manifest, publish_tiny, train_params
from xdetox.cli.plan_extras import plan_json
from xdetox.plan.model import Plan
from xdetox.spec.recipes import PresetError, model_family, resolve, trainer_settings
from xdetox.steps.runner import run_step
from xdetox.store import open_store

P1 = "pref-tuning-2406.16235"
P2 = "breaking-mbad-2505.16722"


def _training(method: str, preset: str | None, mode: str = "full", **hyper: Any) -> dict[str, Any]:
    return {"method": method, "preset": preset, "hyper": hyper,
            "peft": {"mode": mode, "r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear", "merge": True}}


def test_paper1_full_finetuning_settings_are_dpo_py_defaults() -> None:
    hyper, peft = resolve(_training("dpo", P1), "ai-forever/mGPT")
    trl = trainer_settings(hyper, peft)["trl"]
    # values typed from xg/training/dpo.py's ScriptArguments and DPOTrainer call
    expected = {"learning_rate": 1e-5, "beta": 0.1, "optim": "rmsprop", "lr_scheduler_type": "constant_with_warmup",
                "warmup_steps": 150, "weight_decay": 0.05, "max_grad_norm": 10.0, "per_device_train_batch_size": 4,
                "gradient_accumulation_steps": 1, "num_train_epochs": 5.0, "max_length": 256, "eval_steps": 25,
                "save_steps": 25, "early_stopping_patience": 10}
    assert {k: trl[k] for k in expected} == expected
    assert hyper["max_prompt_length"] == 64 and hyper["max_pair_chars"] == 256 and hyper["validation_fraction"] == 0.05
    assert trainer_settings(hyper, peft)["lora"] is None


@pytest.mark.parametrize(("source", "targets"), [
    ("meta-llama/Llama-2-7b-hf", ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                                  "embed_tokens", "lm_head"]),
    ("bigscience/bloom-7b1", ["word_embeddings", "query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]),
])
def test_paper1_qlora_family(source: str, targets: list[str]) -> None:
    hyper, peft = resolve(_training("dpo", P1, mode="qlora"), source)
    s = trainer_settings(hyper, peft)
    assert s["lora"] == {"r": 64, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": targets}
    assert (s["trl"]["num_train_epochs"], s["trl"]["per_device_train_batch_size"],
            s["trl"]["gradient_accumulation_steps"]) == (20.0, 1, 4)
    # the same family fully fine-tuned (bloom-1b7) keeps dpo.py's 5 epochs at batch 4
    full, _ = resolve(_training("dpo", P1), source)
    assert (full["epochs"], full["batch_size"]) == (5.0, 4)


def test_paper2_families_and_effective_batch() -> None:
    aya, aya_peft = resolve(_training("sft", P2, mode="qlora"), "CohereForAI/aya-23-8B")
    bloom, bloom_peft = resolve(_training("sft", P2, mode="qlora"), "bigscience/bloom-7b1")
    assert aya_peft["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert bloom_peft["target_modules"] == ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]
    # effective batch = per device x accumulation: 12 x 4 = 48 (Aya), 12 x 8 = 96 (BLOOM)
    assert aya["batch_size"] * aya["gradient_accumulation_steps"] == 48 and aya["epochs"] == 10.0
    assert bloom["batch_size"] * bloom["gradient_accumulation_steps"] == 96 and bloom["epochs"] == 20.0
    assert trainer_settings(bloom, bloom_peft)["trl"]["warmup_steps"] == 0.03  # transformers 5: ratio as float
    assert aya["learning_rate"] == 2e-4 and aya_peft["r"] == 16 and aya_peft["alpha"] == 32


def test_spec_values_win_over_preset_and_family() -> None:
    t = _training("dpo", P1, mode="qlora", learning_rate=3e-5, epochs=2.0)
    t["peft"]["target_modules"] = ["q_proj"]
    hyper, peft = resolve(t, "meta-llama/Llama-2-7b-hf")
    assert hyper["learning_rate"] == 3e-5 and hyper["epochs"] == 2.0 and hyper["batch_size"] == 1
    assert peft["target_modules"] == ["q_proj"] and peft["r"] == 64


def test_family_and_errors() -> None:
    assert model_family("CohereForAI/aya-expanse-8b") == "aya" and model_family("google/mt5-large") == "mt5"
    assert model_family("builtin:tiny") is None
    with pytest.raises(PresetError, match="is a dpo preset"):
        resolve(_training("sft", P1))
    with pytest.raises(PresetError, match="unknown preset"):
        resolve(_training("dpo", "nope"))


class _Stop(Exception):
    pass


def test_trainer_receives_exactly_what_the_plan_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trl
    from transformers import EarlyStoppingCallback

    from xdetox.models.tiny import build_tiny_model

    captured: dict[str, Any] = {}

    class Capture:
        def __init__(self, **kw: Any) -> None:
            captured.update(kw)
            raise _Stop

    monkeypatch.setattr(trl, "DPOTrainer", Capture)
    folder = tmp_path / "tiny"
    build_tiny_model(folder, seed=5, **QUICK_BUILD)
    store = open_store((tmp_path / "store" / "runs" / "r").as_uri())
    base = publish_tiny(store, folder)
    data = {"format": "paradetox", "path": "bundled:paradetox", "languages": ["en"], "split": "train", "max_rows": 40}
    m = manifest("train", train_params(3, method="dpo", preset=P1, data=data), {"base_model": [base.key]})
    shown = plan_json(Plan(run_id="t", spec_digest="d", settings=[], steps=[base, m], report_key="r"))
    settings = next(s for s in shown["steps"] if s["kind"] == "train")["trainer_settings"]
    with contextlib.suppress(Exception):  # the stand-in stops the step once it has the config
        run_step(m, store, log=lambda s: None)
    cfg = captured["args"]
    assert type(cfg).__name__ == "DPOConfig"
    for name, value in settings["trl"].items():
        if name == "early_stopping_patience":
            (cb,) = [c for c in captured["callbacks"] if isinstance(c, EarlyStoppingCallback)]
            assert cb.early_stopping_patience == value
            continue
        got = getattr(cfg, name)
        got = getattr(got, "value", got)  # transformers enums (optim, scheduler)
        assert got == value, name
    assert captured["peft_config"] is None and settings["lora"] is None
    assert captured["eval_dataset"] is not None  # validation_fraction 0.05 of 40 rows


def test_paper2_training_text_per_family() -> None:
    from xdetox.training.data import load_training_set

    data = {"format": "paradetox", "path": "bundled:paradetox", "languages": ["en"], "split": "train", "max_rows": 2}
    aya, _ = resolve(_training("sft", P2, mode="qlora"), "CohereForAI/aya-23-8B")
    bloom, _ = resolve(_training("sft", P2, mode="qlora"), "bigscience/bloom-7b1")
    plain = load_training_set(data, "sft")
    toxic0 = plain.rows[0]["prompt"][:-1]  # default template "{toxic}\n"
    neutral0 = plain.rows[0]["completion"]
    # Aya: neutral sentences only (empty prompt); BLOOM: their instruction around the toxic sentence
    aya_rows = load_training_set(data, "sft", aya["sft_template"]).rows
    assert aya_rows[0] == {"prompt": "", "completion": neutral0}
    bloom_rows = load_training_set(data, "sft", bloom["sft_template"]).rows
    assert bloom_rows[0]["prompt"] == ("Complete the neutral version of this sentence: " + toxic0
                                       + "\nNeutral completion: ")
    assert bloom_rows[0]["completion"] == neutral0


def test_paper2_paradigm_presets_build_their_scripts_training_text() -> None:
    """P-FT and M-FT train on the neutral sentences: the causal models with nothing before them,
    mT5 reading "detoxify: <neutral>" (P-FT) or the neutral sentence itself (M-FT) and writing it back."""
    from xdetox.training.data import load_training_set

    data = {"format": "paradetox", "path": "bundled:paradetox", "languages": ["en"], "split": "train", "max_rows": 1}
    neutral0 = load_training_set(data, "sft").rows[0]["completion"]
    for preset in (P2 + "-pft", P2 + "-mft"):
        for source in ("CohereForAI/aya-23-8B", "bigscience/bloom-7b1"):
            hyper, _ = resolve(_training("sft", preset, mode="qlora"), source)
            assert load_training_set(data, "sft", hyper["sft_template"]).rows[0] == {"prompt": "", "completion": neutral0}
    pft, _ = resolve(_training("sft", P2 + "-pft", mode="qlora"), "google/mt5-large")
    mft, _ = resolve(_training("sft", P2 + "-mft", mode="qlora"), "google/mt5-large")
    assert load_training_set(data, "sft", pft["sft_template"]).rows[0]["prompt"] == "detoxify: " + neutral0
    assert load_training_set(data, "sft", mft["sft_template"]).rows[0]["prompt"] == neutral0
    # effective batches of their scripts: P-FT 12 x 4 = 48 (mT5 8 x 4 = 32), M-FT 8 x 4 = 32 (mT5 4 x 4 = 16)
    assert (pft["batch_size"] * pft["gradient_accumulation_steps"], mft["batch_size"] * mft["gradient_accumulation_steps"]) == (32, 16)

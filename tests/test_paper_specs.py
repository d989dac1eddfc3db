"""Every spec under jobs/ validates and plans; the papers' specs plan to the counts worked out by hand.

(Rendering every spec to Argo is tested by the Argo helper's tests over jobs/*.yaml.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from xdetox.plan import Plan, plan
from xdetox.plan.estimate import evaluation_cells
from xdetox.spec import load_spec

JOBS = Path(__file__).resolve().parent.parent / "jobs"
SPECS = sorted(JOBS.glob("*.yaml"))

# Paper 2: 4 models; 14 paradigm settings (variants): ZS 1 + X-FT 9 + P-FT 3 (10/20/30%) + M-FT 1.
# 13 trained paradigms x 4 models = 52 training runs.
# generate (1 shard): base arms 4 models x 3 sets x 4 paradigms, each generated as its scripts do
# (ZS/X-FT on np_perm42, P-FT/M-FT on hf_shuffle42; " .." after the prompt for X-FT/P-FT; 100 new
# tokens for M-FT) = 48, tuned 52 x 3 = 156 -> 204.
# score = generate; perplexity (each model's own, its own step) = generate; evaluate = 14 settings;
# report 1; no build_model (hub models), no align.
# Paper-comparable count: 14 settings x 4 models x 9 evaluation languages = 504.
BREAKING_MBAD = {"settings": 14, "trains": 52, "cells": 504,
                 "steps": {"train": 52, "generate": 204, "score": 204, "perplexity": 204, "evaluate": 14,
                           "report": 1}}
# Paper 1: 2 variants (full-ft: 2 models, qlora: 4 models) -> 6 training runs.
# generate: 6 models x 2 arms (base, tuned) x 1 prompt set x 16 shards = 192; score = 192;
# perplexity (mT5-XL, its own GPU step beside each CPU Perspective score step) = 192.
# align: 6 models x 2 arms = 12; analyze: mGPT, the one GPT-2-architecture model = 1, and its
# Perspective scoring in a CPU pod of its own (analyze_score) = 1; evaluate 2; report 1. Cells: 6 models x 17 languages = 102.
PREF_TUNING = {"settings": 2, "trains": 6, "cells": 102,
               "steps": {"train": 6, "generate": 192, "score": 192, "perplexity": 192, "align": 12, "analyze": 1,
                         "analyze_score": 1, "evaluate": 2, "report": 1}}
# Paper 1 x 5 seeds: 2 variants x 5 seeds = 10 settings, 6 x 5 = 30 training runs.
# generate: the seed is in every generation's params, so 6 models x 2 arms x 5 seeds x 16 = 960; score 960;
# perplexity 960.
# align: base arm has no seed (6, shared across seeds) + tuned 6 x 5 = 30 -> 36; analyze: mGPT x 5 seeds, and
# one analyze_score each = 5.
# Cells: 102 x 5 = 510.
PREF_TUNING_5SEEDS = {"settings": 10, "trains": 30, "cells": 510,
                      "steps": {"train": 30, "generate": 960, "score": 960, "perplexity": 960, "align": 36,
                                "analyze": 5, "analyze_score": 5, "evaluate": 10, "report": 1}}
EXPECTED: dict[str, dict[str, Any]] = {
    "breaking-mbad.yaml": BREAKING_MBAD,
    "pref-tuning-xling.yaml": PREF_TUNING,
    "pref-tuning-xling-5seeds.yaml": PREF_TUNING_5SEEDS,
}


def _plan(path: Path) -> Plan:
    return plan(load_spec(path))


def test_jobs_folder_has_the_paper_specs() -> None:
    names = {p.name for p in SPECS}
    assert set(EXPECTED) <= names


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_spec_validates_and_plans_consistently(path: Path) -> None:
    spec = load_spec(path)
    p = plan(spec)
    counts = p.counts()
    assert counts["report"] == 1
    assert counts["evaluate"] == len(p.settings)  # one evaluation per setting
    assert counts.get("score", 0) == counts.get("generate", 0)  # one score shard per generate shard
    # and one perplexity shard per generate shard when the spec asks for perplexity, else none
    assert counts.get("perplexity", 0) == (counts.get("generate", 0) if spec.metrics.perplexity else 0)
    keys = p.by_key()
    for st in p.settings:
        assert st.evaluate_key in keys
        assert all(keys[k].kind == "train" for k in st.train_keys)
    assert p.steps[-1].key == p.report_key  # dependency order ends with the report


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_paper_spec_counts(name: str) -> None:
    want = EXPECTED[name]
    p = _plan(JOBS / name)
    assert len(p.settings) == want["settings"]
    assert len({k for st in p.settings for k in st.train_keys}) == want["trains"]
    assert p.counts() == want["steps"]
    assert evaluation_cells(p) == want["cells"]


def _setting_steps(p: object, setting: object) -> set[str]:
    """Keys of the steps a setting's evaluation reads, transitively."""
    by_key = p.by_key()  # type: ignore[attr-defined]
    todo, seen = [setting.evaluate_key], set()  # type: ignore[attr-defined]
    while todo:
        k = todo.pop()
        if k in seen or k not in by_key:
            continue
        seen.add(k)
        todo.extend(x for keys in by_key[k].inputs.values() for x in keys)
    return seen


def test_breaking_mbad_paradigms() -> None:
    spec = load_spec(JOBS / "breaking-mbad.yaml")
    p = plan(spec)
    by_key = p.by_key()
    labels = [st.overrides.get("label") for st in p.settings]
    assert labels[0] == "ZS" and not p.settings[0].train_keys
    nine = ["am", "ar", "de", "en", "es", "hi", "ru", "uk", "zh"]
    assert [lab for lab in labels if str(lab).startswith("X-FT")] == [f"X-FT {x}" for x in nine]
    fractions = {}
    for st in p.settings[1:]:
        trainings = {by_key[k].params["training"]["data"]["fraction"] for k in st.train_keys}
        langs = {tuple(by_key[k].params["training"]["data"]["languages"]) for k in st.train_keys}
        assert len(st.train_keys) == 4 and len(trainings) == 1 and len(langs) == 1
        fractions[st.overrides["label"]] = (trainings.pop(), langs.pop())
    assert fractions["X-FT uk"] == (1.0, ("uk",))
    assert fractions["P-FT 20%"] == (0.2, tuple(nine))
    assert fractions["M-FT"] == (1.0, tuple(nine))
    sets = {s.params["prompts"]["id"]: s.params["prompts"] for s in p.steps if s.kind == "generate"}
    assert set(sets) == {"train-toxic", "test-toxic", "test-neutral"}
    assert all(ps["languages"] == nine for ps in sets.values())
    # How each script generates, read off the paper's code (generate() calls in scripts/4_zero_shot_*.py,
    # 3_finetune_*_xx_yy.py, 11_finetune_all_percentage*.py, 7_finetune_*.py): every one samples once at
    # T 0.7 / top-p 0.9 with transformers' default top-k 50, except as listed.
    zs, dots, plain = "Complete the sentence: {prompt}", "Complete the sentence: {prompt} ..", "Complete the sentence: {prompt}"
    sample = {"samples": 1, "temperature": 0.7, "top_p": 0.9, "top_k": 50}
    mt5_beams = {"num_beams": 4, "min_new_tokens": 10 - 1, "max_new_tokens": 128 - 1, "no_repeat_ngram_size": 2}
    want = {
        "ZS": {m: (zs, {"max_new_tokens": 50}) for m in ("aya-23-8b", "aya-expanse-8b", "bloom-7b1", "mt5-large")},
        "X-FT de": {"aya-23-8b": (dots, {"max_new_tokens": 50}), "aya-expanse-8b": (dots, {"max_new_tokens": 50}),
                    "bloom-7b1": (dots, {"max_new_tokens": 100, "repetition_penalty": 1.2}),
                    "mt5-large": (dots, mt5_beams)},
        "P-FT 20%": {"aya-23-8b": (dots, {"max_new_tokens": 50}), "aya-expanse-8b": (dots, {"max_new_tokens": 50}),
                     "bloom-7b1": (dots, {"max_new_tokens": 50}),
                     "mt5-large": ("detoxify: {prompt}", {"max_new_tokens": 100})},
        "M-FT": {"aya-23-8b": (plain, {"max_new_tokens": 100, "do_sample": False}),
                 "aya-expanse-8b": (plain, {"max_new_tokens": 100, "do_sample": False}),
                 "bloom-7b1": (plain, {"max_new_tokens": 100, "do_sample": False}),
                 "mt5-large": ("detoxify: {prompt}", {"max_new_tokens": 100, "do_sample": False})},
    }
    plumbing = {"seed", "backend", "batch_size", "chunk_prompts", "chat_template"}
    for st in p.settings:
        label = st.overrides["label"]
        if label not in want:
            continue
        got = {(s.params["model"]["id"], s.params["prompts"]["template"],
                json.dumps({k: v for k, v in s.params["generation"].items() if k not in plumbing}, sort_keys=True))
               for s in p.steps if s.kind == "generate" and s.key in _setting_steps(p, st)}
        expected = {(m, t, json.dumps({**sample, **g}, sort_keys=True)) for m, (t, g) in want[label].items()}
        assert got == expected, label
    assert (sets["test-neutral"]["paradetox_split"], sets["test-neutral"]["paradetox_side"]) == ("test", "neutral")
    train = by_key[p.settings[1].train_keys[0]].params["training"]
    assert train["method"] == "sft" and train["preset"] == "breaking-mbad-2505.16722"
    # each paradigm trains with its own script's recipe, on the split that script draws
    presets = {st.overrides["label"]: {by_key[k].params["training"]["preset"] for k in st.train_keys}
               for st in p.settings[1:]}
    assert presets["X-FT de"] == {"breaking-mbad-2505.16722"} and presets["M-FT"] == {"breaking-mbad-2505.16722-mft"}
    assert all(presets[f"P-FT {x}%"] == {"breaking-mbad-2505.16722-pft"} for x in (10, 20, 30))
    assert train["data"]["split_scheme"] == "np_perm42"  # X-FT am (3_finetune_*_xx_yy.py)
    m_ft = by_key[p.settings[-1].train_keys[0]].params["training"]
    assert m_ft["data"]["split_scheme"] == "hf_shuffle42"  # M-FT (7_finetune_*.py)
    schemes = {(s.params["model"]["arm"], s.params["prompts"]["paradetox_split_scheme"])
               for s in p.steps if s.kind == "generate"}
    assert schemes == {("base", "np_perm42"), ("base", "hf_shuffle42"), ("tuned", "np_perm42"), ("tuned", "hf_shuffle42")}
    assert (train["peft"]["mode"], train["peft"]["r"], train["peft"]["alpha"]) == ("qlora", 16, 32)
    assert spec.metrics.perplexity is not None


def test_pref_tuning_models_and_peft() -> None:
    p = _plan(JOBS / "pref-tuning-xling.yaml")
    by_key = p.by_key()
    peft = {}
    for st in p.settings:
        for k in st.train_keys:
            t = by_key[k].params
            peft[t["model"]["source"]] = (t["training"]["peft"]["mode"], t["training"]["peft"]["r"],
                                          t["training"]["peft"]["alpha"])
            assert t["training"]["data"]["format"] == "lee-toxicity-pairs"
            assert t["training"]["data"]["languages"] == ["en"]
            assert t["training"]["preset"] == "pref-tuning-2406.16235"
    assert {k: v[0] for k, v in peft.items()} == {
        "ai-forever/mGPT": "full", "bigscience/bloom-1b7": "full", "bigscience/bloom-7b1": "qlora",
        "meta-llama/Llama-2-7b-hf": "qlora", "meta-llama/Meta-Llama-3-8B": "qlora", "CohereForAI/aya-23-8B": "qlora"}
    assert peft["meta-llama/Llama-2-7b-hf"][1:] == (64, 16)
    gen = next(s for s in p.steps if s.kind == "generate")
    g = gen.params["generation"]
    assert (g["samples"], g["temperature"], g["top_p"], g["max_new_tokens"]) == (25, 0.9, 0.8, 20)
    assert "top_k" not in g and "num_beams" not in g  # its vLLM script samples without top-k (commented out)
    assert gen.params["prompts"]["source"].startswith("rtp-lx:")
    assert len(gen.params["prompts"]["languages"]) == 17
    ev = by_key[p.settings[0].evaluate_key].params["metrics"]
    assert ev["perplexity"]["reference"] == "google/mt5-xl"
    assert ev["alignment"]["parallel_set"] == "bundled:xling-prompts-200"
    score = next(s for s in p.steps if s.kind == "score")
    assert score.params["scorer"]["kind"] == "perspective"


def test_five_seeds_file_is_the_base_spec_plus_a_seed_matrix() -> None:
    def body(name: str) -> dict[str, Any]:
        data = yaml.safe_load((JOBS / name).read_text(encoding="utf-8"))
        return {k: v for k, v in data.items() if k not in {"name", "description", "matrix"}}

    assert body("pref-tuning-xling.yaml") == body("pref-tuning-xling-5seeds.yaml")
    seeds = load_spec(JOBS / "pref-tuning-xling-5seeds.yaml").matrix["seed"]
    assert len(set(seeds)) == 5

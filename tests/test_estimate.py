"""Cost estimates from a plan: counts worked out by hand, throughput figures applied as stated."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from xdetox.plan import plan
from xdetox.plan.estimate import (
    DEFAULT_THROUGHPUT,
    DPO_REFERENCE_OVERHEAD,
    LEE_PAIRS,
    estimate,
    params_billions,
    prompts_per_language,
    render_estimate,
    size_class,
)
from xdetox.spec import load_spec, load_spec_text

JOBS = Path(__file__).resolve().parent.parent / "jobs"

SPEC = """
name: est
models: [{id: m, source: org/model-1b}]
training: {method: none}
prompts:
  - {id: x, source: "bundled:xling-prompts-200", languages: [en, de, fr], limit_per_language: 10}
generation: {samples: 5, max_new_tokens: 20}
scoring: {kind: perspective, qps: 2.0}
sharding: {generate: 2}
"""


@pytest.mark.parametrize(("source", "billions", "cls"), [
    ("bigscience/bloom-7b1", 7.1, "medium"), ("bigscience/bloom-1b7", 1.7, "small"),
    ("meta-llama/Meta-Llama-3-8B", 8.0, "medium"), ("meta-llama/Llama-2-7b-hf", 7.0, "medium"),
    ("CohereForAI/aya-23-8B", 8.0, "medium"), ("ai-forever/mGPT", 1.3, "small"),
    ("google/mt5-xl", 3.7, "small"), ("builtin:tiny", 0.001, "tiny"), ("s3://b/models/mGPT", 1.3, "small"),
    ("org/some-70B-model", 70.0, "large"), ("xlm-roberta-base", None, "medium"),
])
def test_model_sizes_from_names(source: str, billions: float | None, cls: str) -> None:
    assert params_billions(source) == billions
    assert size_class(source) == cls


def test_prompt_counts_use_limit_else_known_sizes() -> None:
    assert prompts_per_language({"source": "rtp-lx:/data", "limit_per_language": None}, "ru") == (1225, None)
    assert prompts_per_language({"source": "rtp-lx:/data", "limit_per_language": 50}, "ru") == (50, None)
    assert prompts_per_language({"source": "bundled:xling-prompts-200", "limit_per_language": 999}, "de")[0] == 200
    assert prompts_per_language({"source": "paradetox:bundled", "paradetox_split": "train"}, "am")[0] == 300
    assert prompts_per_language({"source": "paradetox:bundled", "paradetox_split": "test"}, "am")[0] == 100
    n, note = prompts_per_language({"source": "jsonl:/x.jsonl"}, "en")
    assert n == 1000 and note is not None and "assumed" in note


def test_generation_and_perspective_by_hand() -> None:
    est = estimate(plan(load_spec_text(SPEC)))
    gen, score = est.by_kind["generate"], est.by_kind["score"]
    # 3 languages x 10 prompts x 5 samples = 150 continuations, split over 2 shards (75 + 75)
    assert (gen.steps, gen.generations, score.scored_texts) == (2, 150, 150)
    # small class: 150 x 20 tokens at 20,000 tok/s, plus 90 s start-up per shard
    assert gen.gpu_hours == pytest.approx((150 * 20 / 20_000 + 2 * 90) / 3600)
    assert score.perspective_days == pytest.approx(150 / (2.0 * 0.9) / 86400)  # sent at 90 % of the quota
    assert score.gpu_hours == 0  # Perspective uses no GPU
    assert est.total.generations == 150
    assert any("prompt counts" in a for a in est.assumptions)


def test_a_shard_longer_than_the_perspective_deadline_is_pointed_out() -> None:
    # 75 texts a shard at 2 qps x 0.9 = 41.7 s of API time: a 60 s deadline holds, a 40 s one does not
    fits = estimate(plan(load_spec_text(SPEC.replace("qps: 2.0", "qps: 2.0, shard_deadline_s: 60"))))
    assert not any("shard_deadline_s" in a for a in fits.assumptions)
    tight = estimate(plan(load_spec_text(SPEC.replace("qps: 2.0", "qps: 2.0, shard_deadline_s: 40"))))
    (note,) = [a for a in tight.assumptions if "shard_deadline_s" in a]
    assert "shards of 75 texts" in note and f"{75 / 1.8 / 3600:,.1f} h" in note and "sharding.generate" in note


def test_training_by_hand_and_custom_throughput() -> None:
    spec = SPEC.replace(
        "training: {method: none}",
        "training: {method: dpo, preset: pref-tuning-2406.16235, data: {format: lee-toxicity-pairs, path: /p.jsonl}}",
    )
    p = plan(load_spec_text(spec))
    train = estimate(p).by_kind["train"]
    examples = LEE_PAIRS * 5  # the preset's upper bound of 5 epochs
    assert train.train_examples == examples
    tokens = examples * 192 * DPO_REFERENCE_OVERHEAD
    assert train.gpu_hours == pytest.approx((tokens / 40_000 + 90) / 3600)
    faster = dataclasses.replace(
        DEFAULT_THROUGHPUT,
        train_tokens_per_s={k: {m: 2 * v for m, v in d.items()} for k, d in DEFAULT_THROUGHPUT.train_tokens_per_s.items()},
        step_overhead_s={k: 0 for k in DEFAULT_THROUGHPUT.step_overhead_s},
    )
    assert estimate(p, faster).by_kind["train"].gpu_hours == pytest.approx(tokens / 80_000 / 3600)


def test_max_steps_overrides_epochs() -> None:
    spec = SPEC.replace(
        "training: {method: none}",
        "training: {method: sft, data: {format: paradetox, path: 'bundled:paradetox'}, "
        "hyper: {max_steps: 10, batch_size: 4, gradient_accumulation_steps: 2}}",
    )
    assert estimate(plan(load_spec_text(spec))).by_kind["train"].train_examples == 10 * 4 * 2


def test_breaking_mbad_perspective_days() -> None:
    est = estimate(plan(load_spec(JOBS / "breaking-mbad.yaml")))
    # per arm: (300 train-toxic + 100 test-toxic + 100 test-neutral) x 9 languages = 4,500 prompts, 1 sample;
    # arms: 16 base (4 models x 4 paradigms, each generated as its scripts do: split, prompt, new
    # tokens; shared by a paradigm's settings) + 52 tuned = 68 -> 306,000 texts at 0.9 of 1 qps
    assert est.by_kind["generate"].generations == 306_000
    assert est.by_kind["score"].perspective_days == pytest.approx(306_000 / 0.9 / 86400)
    # X-FT on one language: 300 rows x E epochs, 9 languages. P-FT: 9 x 300 x fraction x 15 epochs;
    # M-FT: 9 x 300 x E. E per family from the paper's scripts: X-FT Aya 10, BLOOM and mT5 20;
    # M-FT Aya 10, BLOOM and mT5 15.
    def per_model(x_ft: int, m_ft: int) -> int:
        return 9 * 300 * x_ft + sum(9 * int(300 * f) * 15 for f in (0.1, 0.2, 0.3)) + 9 * 300 * m_ft

    assert est.by_kind["train"].train_examples == per_model(10, 10) * 2 + per_model(20, 15) * 2


def test_pref_tuning_generations() -> None:
    est = estimate(plan(load_spec(JOBS / "pref-tuning-xling.yaml")))
    # RTP-LX v0.2: 18,328 prompts in 17 languages x 25 samples x 6 models x 2 arms
    assert est.by_kind["generate"].generations == 18_328 * 25 * 12
    assert est.by_kind["align"].steps == 12


def test_render_and_cli_extras() -> None:
    from xdetox.cli.plan_extras import print_estimate, settings_line

    spec = load_spec(JOBS / "breaking-mbad.yaml")
    p = plan(spec)
    est = estimate(p)
    table = render_estimate(est)
    assert isinstance(table, Table)
    assert table.row_count == len(est.by_kind) + 1  # one row per kind and the total
    assert "504" in settings_line(p) and "52" in settings_line(p)
    buf = io.StringIO()
    print_estimate(p, spec, Console(file=buf, width=200))
    text = buf.getvalue()
    assert "GPU-hours" in text and "Perspective" in text and "306,000" in text


def test_neuron_analysis_by_hand() -> None:
    spec = SPEC + "analysis: {models: [m], limit_per_language: 4, max_new_tokens: 20}\n"
    by_kind = estimate(plan(load_spec_text(spec))).by_kind
    ana, judged = by_kind["analyze"], by_kind["analyze_score"]
    # 3 languages x min(4, 10) = 12 prompts, decoded four times (base, the default intervention's two
    # offsets -5 and +5, and the neuron selection's pass, counted whole), 20 tokens each, small class
    # under transformers: 20,000 tok/s / 10 slowdown; plus 90 s start-up. No scoring in that GPU pod
    assert ana.steps == 1 and ana.scored_texts == 0 and ana.perspective_days == 0
    assert ana.gpu_hours == pytest.approx((12 * 4 * 20 / 2_000 + 90) / 3600)
    # the run's scorer (Perspective at 2 qps x 0.9 margin) judges base + 2 offsets = 36 texts in its
    # own CPU step: 20 s of quota, no GPU held meanwhile
    assert judged.steps == 1
    assert judged.scored_texts == 36
    assert judged.perspective_days == pytest.approx(36 / 1.8 / 86400)
    assert judged.gpu_hours == 0


def test_mt5_generation_is_costed_at_transformers_speed() -> None:
    """vLLM does not serve mT5, so its generate steps run with transformers whatever the backend."""
    spec = SPEC.replace("org/model-1b", "google/mt5-large").replace("max_new_tokens: 20}", "max_new_tokens: 20, backend: vllm}")
    gen = estimate(plan(load_spec_text(spec))).by_kind["generate"]
    # 3 languages x 10 prompts x 5 samples = 150 generations of 20 tokens, in 2 shards of 75; mt5-large
    # (1.2B by name: small class) at 20,000 tok/s / 10 for transformers; 90 s start-up per shard
    assert gen.generations == 150
    assert gen.gpu_hours == pytest.approx(2 * (75 * 20 / 2_000 + 90) / 3600)

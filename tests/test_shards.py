"""Horizontal generation: 64 rendered generate shards are balanced; shard suggestions for paper 1."""

from __future__ import annotations

import pytest

from tests.argo_fixtures import ROOT, cluster_config, dag
from xdetox.executors.argo.render import render
from xdetox.generation.sharding import shard_items
from xdetox.plan import plan as make_plan
from xdetox.plan.shards import advise, suggested_shards
from xdetox.prompts.base import PromptItem
from xdetox.spec import load_spec, load_spec_text

# RTP-LX v0.2 prompts per language (line counts of its 17 files), written out here by hand:
# they add up to paper 1's 18,328 prompts.
RTP_LX = {"ar": 1051, "cs": 1038, "de": 1029, "en": 999, "es": 1098, "fr": 1038, "hi": 1115, "id": 1099,
          "it": 1113, "ja": 1070, "ko": 1099, "nl": 1075, "pl": 1099, "pt": 1095, "ru": 1225, "sv": 1049,
          "zh": 1036}

SPEC = """
name: shard-test
store: s3://bucket/prefix
models: [{id: m, source: meta-llama/Meta-Llama-3-8B}]
training: {method: dpo, data: {format: paradetox, path: bundled:paradetox}}
prompts: [{id: rtp, source: "rtp-lx:s3://bucket/rtp-lx", languages: [LANGS]}]
generation: {samples: 25, max_new_tokens: 20}
sharding: {generate: 64}
resources:
  generate: {gpu: 1, cpu: "4", memory: 32Gi}
""".replace("LANGS", ", ".join(RTP_LX))


def test_paper1_prompt_count_is_18328() -> None:
    assert sum(RTP_LX.values()) == 18_328


def test_64_rendered_generate_shards_are_balanced() -> None:
    spec = load_spec_text(SPEC)
    wf = render(make_plan(spec), spec, cluster_config())
    gen_tasks = [t for t in dag(wf) if t["name"].startswith("generate-")]
    assert gen_tasks
    items = [PromptItem(prompt_id=f"{i:05d}", language=lang, prompt="x") for lang, n in RTP_LX.items()
             for i in range(n)]
    for task in gen_tasks:
        shards = sorted(item["shard"] for item in task["withItems"])
        assert shards == list(range(64))
        sizes = [len(shard_items(items, i, 64)) for i in shards]
        assert sum(sizes) == 18_328
        # 18,328 / 64 = 286.375 per shard: round-robin gives 286 or 287, max/mean = 1.0022
        assert max(sizes) / (sum(sizes) / 64) <= 1.05
        assert set(sizes) == {286, 287}


def test_suggestion_keeps_pods_busy_by_hand() -> None:
    # W = 1145.5 s, o = 240 s: floor(1145.5 * 0.1 / (0.9 * 240)) = floor(0.530) -> at least 1
    assert suggested_shards(1145.5, 240) == 1
    # transformers backend, 10x slower: floor(11455 * 0.1 / 216) = floor(5.303) = 5
    assert suggested_shards(11_455, 240) == 5
    assert suggested_shards(100_000, 10) == 1111  # floor(100000 * 0.1 / 9) = floor(1111.1)


def test_paper1_estimate_states_shards_and_busy_share() -> None:
    spec = load_spec(ROOT / "jobs/pref-tuning-xling.yaml")
    rows = advise(make_plan(spec))
    medium = next(r for r in rows if r.model.startswith("medium"))
    # 7-8B: 18,328 prompts x 25 samples x 20 tokens / 8,000 tok/s = 1,145.5 GPU-seconds per group
    assert medium.prompts == 18_328 and medium.samples == 25
    assert medium.work_s == pytest.approx(1145.5)
    assert medium.groups == 8  # 4 QLoRA models x (base, tuned)
    assert medium.shards == 16
    # busy at 16 shards: 71.59 / (71.59 + 240) = 0.2298
    assert medium.busy() == pytest.approx(0.2298, abs=1e-4)
    assert medium.suggested == 1

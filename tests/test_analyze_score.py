"""The analyze_score step (issue 15 item 2): the run's scorer judges an analyze step's committed
continuations outside the analysis's GPU pod, and the planner puts it between analyze and report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xdetox.manifest import StepManifest
from xdetox.plan import plan
from xdetox.spec import load_spec
from xdetox.steps import registry
from xdetox.steps.runner import run_step
from xdetox.store.local import LocalStore

ROOT = Path(__file__).resolve().parent.parent

#: (arm, continuations) of the fake analysis's English prompts; lexicon hits by eye: "shit", "bitch"
#: (both in the default LDNOOBW v1 English list)
TEXTS = {"base": ["you are shit", "a calm day"], "offset -5": ["a calm day", "the weather"],
         "offset 5": ["shit and bitch", "a bitch"]}


def _fake_analyze(ctx: Any) -> dict[str, Any]:
    rows = [{"prompt_id": f"en-{i}", "language": "en", "prompt": f"p{i}", "prompt_text": f"p{i}", "sample_index": 0,
             "text": t, "seed": 0, "model_id": "m", "model_digest": "analyze", "arm": arm,
             "backend": "transformers-greedy", "prompt_set": "ps"}
            for arm, texts in TEXTS.items() for i, t in enumerate(texts)]
    ctx.put_bytes("continuations.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    ctx.put_json("analysis.json", {"model_id": "m", "languages": {"en": {
        "prompts": 2, "base": {"mean": 0.1}, "intervention": [{"offset": -5.0}, {"offset": 5.0}]}}})
    return {}


def test_scores_each_arm_of_the_committed_continuations(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    registry.register("analyze", _fake_analyze)
    try:
        analyze = StepManifest(kind="analyze", key="a" * 16, run_id="r", label="analyze", params={},
                               output_prefix="analysis/a")
        run_step(analyze, store, log=lambda m: None)
    finally:
        registry.unregister("analyze")
    scoring = StepManifest(kind="analyze_score", key="s" * 16, run_id="r", label="analyze score",
                           params={"scorer": {"kind": "lexicon"}, "model_id": "m"},
                           inputs={"analysis": [analyze.key]}, output_prefix="analysis/s")
    rec, _ = run_step(scoring, store, log=lambda m: None)
    assert rec.info["rows"] == 6
    out = json.loads((tmp_path / "store" / "analysis" / "s" / "analysis.json").read_text())
    en = out["languages"]["en"]
    # share of continuations with a lexicon hit, by hand: base 1 of 2, offset -5 0 of 2, offset +5 2 of 2
    assert en["base_score"] == {"mean": 0.5, "n": 2, "n_missing": 0, "measure": "lexicon hit rate"}
    minus, plus = en["intervention"]
    assert (minus["score"]["mean"], plus["score"]["mean"]) == (0.0, 1.0)
    assert en["base"] == {"mean": 0.1}  # the analysis itself is carried over unchanged
    assert out["scorer"]["score_kind"] == "hits"


def test_paper1_plan_scores_the_analysis_in_its_own_step() -> None:
    p = plan(load_spec(ROOT / "jobs" / "pref-tuning-xling.yaml"))
    by_key = p.by_key()
    (analyze,) = [s for s in p.steps if s.kind == "analyze"]
    (scoring,) = [s for s in p.steps if s.kind == "analyze_score"]
    assert "scorer" not in analyze.params  # the GPU step's key no longer depends on the scorer
    assert scoring.inputs == {"analysis": [analyze.key]}
    assert scoring.params["scorer"]["kind"] == "perspective" and scoring.params["model_id"] == "mgpt-1b3"
    # the report (and so `xdetox compare`) reads the scored analysis, not the unscored one
    assert by_key[p.report_key].inputs["analyses"] == [scoring.key]

"""The analyze_score step (issue 15 item 2): the run's scorer judges an analyze step's committed
continuations outside the analysis's GPU pod, and the planner puts it between analyze and report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.scoring_fixtures import FakePerspective, fake_score
from xdetox.manifest import StepManifest
from xdetox.plan import plan
from xdetox.spec import load_spec
from xdetox.steps import registry
from xdetox.steps.runner import is_committed, run_step
from xdetox.store.local import LocalStore

ROOT = Path(__file__).resolve().parent.parent

#: (arm, continuations) of the fake analysis's English prompts; lexicon hits by eye: "shit", "bitch"
#: (both in the default LDNOOBW v1 English list)
TEXTS = {"base": ["you are shit", "a calm day"], "offset -5": ["a calm day", "the weather"],
         "offset 5": ["shit and bitch", "a bitch"]}


def _fake_analyze(ctx: Any, texts: dict[str, list[str]] = TEXTS) -> dict[str, Any]:
    rows = [{"prompt_id": f"en-{i}", "language": "en", "prompt": f"p{i}", "prompt_text": f"p{i}", "sample_index": 0,
             "text": t, "seed": 0, "model_id": "m", "model_digest": "analyze", "arm": arm,
             "backend": "transformers-greedy", "prompt_set": "ps"}
            for arm, arm_texts in texts.items() for i, t in enumerate(arm_texts)]
    ctx.put_bytes("continuations.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    ctx.put_json("analysis.json", {"model_id": "m", "languages": {"en": {
        "prompts": 2, "base": {"mean": 0.1}, "intervention": [{"offset": -5.0}, {"offset": 5.0}]}}})
    return {}


def _analyzed(store: LocalStore, texts: dict[str, list[str]], scorer: dict[str, Any]) -> StepManifest:
    """Commit a fake analyze step with these continuations; the analyze_score manifest reading it."""
    with registry.overridden({"analyze": lambda ctx: _fake_analyze(ctx, texts)}):
        analyze = StepManifest(kind="analyze", key="a" * 16, run_id="r", label="analyze", params={},
                               output_prefix="analysis/a")
        run_step(analyze, store, log=lambda m: None)
    return StepManifest(kind="analyze_score", key="s" * 16, run_id="r", label="analyze score",
                        params={"scorer": scorer, "model_id": "m"}, inputs={"analysis": [analyze.key]},
                        output_prefix="analysis/s")


def test_scores_each_arm_of_the_committed_continuations(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    scoring = _analyzed(store, TEXTS, {"kind": "lexicon"})
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


def test_perspective_storm_is_not_committed_and_the_retry_replays_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the scorer's own client (stand-in speaking Perspective's wire format): the store's
    score cache and the storm policy apply to the analysis's continuations as to any score shard."""
    from xdetox.scoring.base import ShardIncomplete

    monkeypatch.setenv("XDETOX_TEST_PERSPECTIVE_KEY", "k")
    texts = {"base": ["text 0", "text 1"], "offset -5": ["text 2", "text 3"], "offset 5": ["text 4", "text 5"]}
    store = LocalStore(tmp_path / "store")
    with FakePerspective(key="k") as server:
        server.script["text 3"] = [503, 503]  # both attempts fail: 1 of 6 missing > the default 1 %
        scoring = _analyzed(store, texts, {"kind": "perspective", "endpoint": server.endpoint, "qps": 100,
                                           "max_retries": 1, "api_key_env": "XDETOX_TEST_PERSPECTIVE_KEY"})
        with pytest.raises(ShardIncomplete, match=r"1 of 6 texts"):
            run_step(scoring, store, log=lambda m: None)
        assert not is_committed(store, scoring.key)
        first = len(server.requests)
        assert first == 5 + 2
        run_step(scoring, store, log=lambda m: None)  # the retry: the storm is over
        assert len(server.requests) - first == 1  # only the gap; five scores replayed from the cache
    en = json.loads((tmp_path / "store" / "analysis" / "s" / "analysis.json").read_text())["languages"]["en"]
    # the stand-in's score of each text, averaged per arm by hand
    assert en["base_score"]["mean"] == pytest.approx((fake_score("text 0") + fake_score("text 1")) / 2)
    minus, plus = en["intervention"]
    assert minus["score"] == {"mean": pytest.approx((fake_score("text 2") + fake_score("text 3")) / 2), "n": 2,
                              "n_missing": 0, "measure": "average toxicity"}
    assert plus["score"]["mean"] == pytest.approx((fake_score("text 4") + fake_score("text 5")) / 2)


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


def test_compare_reads_the_scored_analyses_the_report_lists(tmp_path: Path) -> None:
    from xdetox.cli.report_cmds import _run_analyses
    from xdetox.manifest import commit_key

    p = plan(load_spec(ROOT / "jobs" / "pref-tuning-xling.yaml"))
    (analyze,) = [s for s in p.steps if s.kind == "analyze"]
    (scoring,) = [s for s in p.steps if s.kind == "analyze_score"]
    store = LocalStore(tmp_path / "run")
    for st, body in ((analyze, {"model_id": "mgpt-1b3", "languages": {}}),
                     (scoring, {"model_id": "mgpt-1b3", "languages": {}, "scorer": {"id": "perspective-toxicity"}})):
        store.put_bytes(f"{st.output_prefix}/analysis.json", json.dumps(body).encode())
        store.put_bytes(commit_key(st.key), json.dumps({
            "key": st.key, "kind": st.kind, "label": st.label, "outputs": [], "started_at": "t",
            "finished_at": "t", "seconds": 0.0}).encode())
    # the scored analysis only (the unscored one, committed too, is not what compare shows)
    assert _run_analyses(store, p) == [("mgpt-1b3", {"model_id": "mgpt-1b3", "languages": {},
                                                     "scorer": {"id": "perspective-toxicity"}})]

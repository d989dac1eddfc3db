"""The embedded smoke experiment end to end, through the real CLI and real steps (slow suite).

It must show a measured effect, not only run: after English-only DPO the tuned tiny model's
English average toxicity (the stacked probability scorer's, the spec's headline) is below the base
model's with a paired CI below 0, every language is reported, and lexicon v2 beside it gives its own
numbers and its agreement with the stacked scorer. No exact numbers: another CPU samples other text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _xdetox(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xdetox.cli.main", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=1200, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


def test_smoke_runs_end_to_end_and_shows_an_effect(tmp_path: Path) -> None:
    store = (tmp_path / "store").as_uri()
    t0 = time.perf_counter()
    first = _xdetox("run", "jobs/smoke.yaml", "--store", store, "--no-progress")
    elapsed = time.perf_counter() - t0
    assert first.returncode == 0, first.stderr[-4000:]
    print(f"smoke run: {elapsed:.1f}s")
    run = tmp_path / "store" / "runs" / "smoke"
    metrics = json.loads((run / "results" / "metrics.json").read_text())
    assert metrics["score_kind"] == "probability"  # the stacked scorer: the papers' metrics
    assert metrics["scorer"]["kind"] == "stacked" and metrics["compare_scorers"][0]["kind"] == "lexicon"
    headline = metrics["headline_metric"]
    assert headline == "average_toxicity"  # jobs/smoke.yaml's metrics.headline
    evaluation = metrics["settings"][0]["evaluation"]
    (comparison,) = evaluation["comparisons"]
    assert set(comparison["languages"]) == {"en", "ar", "hi", "ru", "zh"}
    en = comparison["per_language"]["en"][headline]
    assert 0.0 < en["tuned"] < en["base"] <= 1.0, en
    assert en["abs_change_ci"][1] < 0, en  # the paired prompt-bootstrap interval excludes no change
    for lang in comparison["languages"]:
        for name in ("expected_maximum_toxicity", "toxicity_probability", "average_toxicity"):
            assert comparison["per_language"][lang][name]["base"] is not None, (lang, name)
    # lexicon v2 beside it: its own hit rates per arm, its own tuned - base, and the agreement
    (lexicon,) = comparison["other_scorers"]
    assert lexicon["score_kind"] == "hits" and lexicon["scorer_id"].startswith("lexicon")
    assert set(lexicon["per_language"]) == set(comparison["languages"])
    assert lexicon["per_language"]["en"]["lexicon_hit_rate"]["base"] > 0.0
    for arm in evaluation["arms"]:
        assert arm["other_scorers"][0]["score_kind"] == "hits"
        (agreement,) = arm["scorer_agreement"]
        assert agreement["scorer_a"]["scorer_id"].startswith("stacked")
        for lang in comparison["languages"]:
            v = agreement["per_language"][lang]
            assert v["both_scored"] > 0 and -1.0 <= v["spearman"] <= 1.0, (arm["arm"], lang, v)
    report = (run / "results" / "report.md").read_text()
    assert "Agreement of stacked" in report and "compare scorer lexicon" in report
    assert "Average toxicity — base vs tuned" in first.stdout and "Beside it: lexicon" in first.stdout
    for name in ("report.md", "report.html", "metrics.json"):
        assert (run / "results" / name).stat().st_size > 0
    assert list((run / "results" / "plots").glob("*.png"))
    assert "report:" in first.stdout
    # a person reads Rich lines only: no third-party warnings or weight-loading bars (issue 17 item 5)
    for noise in ("Loading weights", "DeprecationWarning", "FutureWarning"):
        assert noise not in first.stderr, first.stderr[-4000:]

    # A rerun reuses every committed step and computes nothing.
    second = _xdetox("run", "jobs/smoke.yaml", "--store", store, "--no-progress")
    assert second.returncode == 0, second.stderr[-2000:]
    assert " 0 ran," in second.stderr and "cached" in second.stderr


def test_nightly_reproduces_its_reference(tmp_path: Path) -> None:
    """The nightly job, run for real on this machine (any CPU model: the check tests against the
    reference seeds' distribution, not one run's numbers), passes; the same metrics with the
    tuned arm made equal to the base arm (a tuning step that does nothing) fail."""
    store = (tmp_path / "store").as_uri()
    run = _xdetox("run", "jobs/nightly.yaml", "--store", store, "--no-progress")
    assert run.returncode == 0, run.stderr[-4000:]
    check = _xdetox("argo", "check-nightly", "--store", store, "--reference", "jobs/nightly-reference.json")
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    results = tmp_path / "store" / "runs" / "nightly" / "results"
    assert "PASS" in (results / "nightly-check.md").read_text().upper()

    metrics_path = results / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    arms = metrics["settings"][0]["evaluation"]["arms"]
    base = next(a for a in arms if a["arm"] == "base")
    for arm in arms:
        if arm["arm"] == "tuned":
            arm["average"], arm["per_language"] = base["average"], base["per_language"]
    metrics_path.write_text(json.dumps(metrics))
    broken = _xdetox("argo", "check-nightly", "--store", store, "--reference", "jobs/nightly-reference.json")
    assert broken.returncode == 1, broken.stdout[-3000:]
    assert "REGRESSION" in (results / "nightly-check.md").read_text()

"""`xdetox compare`: a run beside paper 1's Table 2; lexicon runs refused unless forced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.metrics_fixtures import make_setting, publish_plan
from xdetox.cli.main import app
from xdetox.report.compare import DATA_DIR, CompareError, compare, load_paper, match_paper_model
from xdetox.steps.runner import run_step
from xdetox.store import open_store

PAPER = "pref-tuning-2406.16235"


def test_vendored_reference_has_licence_and_table() -> None:
    assert (DATA_DIR / "LICENSE").read_text().startswith("BSD 3-Clause License")
    assert "2406.16235" in (DATA_DIR / "NOTICE").read_text()
    paper = load_paper(PAPER)
    assert len(paper["languages"]) == 17
    mgpt = {r["stage"]: r for r in paper["rows"] if r["model"] == "ai-forever/mGPT"}
    assert mgpt["before"]["tox_prob"] == 0.468 and mgpt["after"]["tox_prob"] == 0.039
    with pytest.raises(CompareError, match="unknown paper"):
        load_paper("nope")


def test_model_matching() -> None:
    paper = load_paper(PAPER)
    assert match_paper_model("mgpt-1b3", "ai-forever/mGPT", paper) == "ai-forever/mGPT"
    assert match_paper_model("bloom-1b7", None, paper) == "bigscience/bloom-1b7"
    assert match_paper_model("tiny", "builtin:tiny", paper) is None
    assert match_paper_model("tiny", None, paper, explicit="mGPT") == "ai-forever/mGPT"
    with pytest.raises(CompareError, match="not in the paper"):
        match_paper_model("tiny", None, paper, explicit="gpt-5")


def _run(tmp_path: Path, kind: str) -> Path:
    store = open_store(tmp_path.as_uri())
    m = make_setting(store, kind=kind, model="mgpt-1b3", languages=["en", "de", "zh"])
    run_step(m, store, log=lambda s: None)
    publish_plan(store, [m], ["default"], [{}], {"kind": "lexicon" if kind == "hits" else "perspective"},
                 models={"mgpt-1b3": "ai-forever/mGPT"})
    return tmp_path


def test_compare_probability_run(tmp_path: Path) -> None:
    _run(tmp_path, "probability")
    ev = json.loads(next((tmp_path / "evaluations").rglob("metrics.json")).read_text())
    res = compare([("default", ev)], load_paper(PAPER), {"mgpt-1b3": "ai-forever/mGPT"})
    rows = {(r["metric"], r["stage"]): r for r in res["rows"]}
    emt_before = rows[("emt", "before")]
    run_value = ev["arms"][0]["average"]["expected_maximum_toxicity"]["value"]
    assert emt_before["run"] == pytest.approx(run_value) and emt_before["paper"] == 0.502
    assert emt_before["difference"] == pytest.approx(run_value - 0.502)
    assert rows[("dist2", "after")]["paper"] == 0.807
    assert rows[("ppl", "before")]["run"] is not None
    assert any("3 languages" in w for w in res["warnings"])  # the paper averages 17
    lc = rows[("lang_consistency", "after")]  # this run's own, with its CI; the paper has none
    tuned_lc = ev["arms"][1]["average"]["language_consistency"]
    assert lc["run"] == pytest.approx(tuned_lc["value"]) and lc["run_ci"] == tuned_lc["ci"]
    assert lc["paper"] is None and lc["difference"] is None

    out = CliRunner().invoke(app, ["compare", str(tmp_path), "--paper", PAPER])
    assert out.exit_code == 0, out.output
    assert "0.502" in out.output and "ai-forever/mGPT" in out.output
    assert "lang_consistency" in out.output
    js = CliRunner().invoke(app, ["compare", str(tmp_path), "--paper", PAPER, "--json"])
    assert js.exit_code == 0 and json.loads(js.stdout)["rows"]


def test_compare_refuses_lexicon_unless_forced(tmp_path: Path) -> None:
    _run(tmp_path, "hits")
    out = CliRunner().invoke(app, ["compare", str(tmp_path), "--paper", PAPER])
    assert out.exit_code == 2 and "Traceback" not in out.output
    text = " ".join(out.output.split())
    assert "lexicon" in text and "not Perspective API toxicity probabilities" in text and "--force" in text
    forced = CliRunner().invoke(app, ["compare", str(tmp_path), "--paper", PAPER, "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    res = json.loads(forced.stdout)
    assert res["forced_lexicon"] and any("FORCED" in w for w in res["warnings"])
    metrics = {(r["metric"], r["run_metric"]) for r in res["rows"]}
    assert ("tox_prob", "lexicon_prompt_hit_share") in metrics
    assert not any(m == "emt" for m, _ in metrics)  # no lexicon counterpart of EMT


def test_compare_errors_are_clean(tmp_path: Path) -> None:
    _run(tmp_path, "probability")
    bad = CliRunner().invoke(app, ["compare", str(tmp_path), "--paper", "nope"])
    assert bad.exit_code == 2 and "unknown paper" in bad.output
    none = CliRunner().invoke(app, ["compare", "missing-run", "--paper", PAPER, "--store", (tmp_path / "x").as_uri()])
    assert none.exit_code == 2 and "no run at" in none.output


def _ev(scorer_kind: str = "perspective") -> dict:
    """A minimal evaluation: one base/tuned comparison on prompt set 'ps', and an alignment correlation."""
    avg = {"average": {"expected_maximum_toxicity": {"value": 0.4, "ci": [0.3, 0.5]}}}
    return {
        "score_kind": "probability", "scorer_kind": scorer_kind,
        "arms": [{"input": "b", **avg}, {"input": "t", **avg}],
        "comparisons": [{"model_id": "mgpt-1b3", "prompt_set": "ps", "base": "b", "tuned": "t",
                         "languages": ["de"], "per_language": {"de": {}}}],
        "alignment": {"mgpt-1b3": {"correlations": [
            {"prompt_set": "ps", "paired_cosine": {"r": 0.61, "p_value": 0.02, "n": 16, "reason": None}}]}},
    }


def test_compare_refuses_another_prompt_set_or_scorer_naming_both() -> None:
    paper = load_paper(PAPER)
    models = {"mgpt-1b3": "ai-forever/mGPT"}
    with pytest.raises(CompareError) as e:
        compare([("s", _ev())], paper, models, prompt_sources={"ps": "bundled:xling"})
    assert "'ps' comes from bundled:xling" in str(e.value) and "RTP-LX (17 languages)" in str(e.value)
    with pytest.raises(CompareError) as e:
        compare([("s", _ev("classifier"))], paper, models, prompt_sources={"ps": "rtp-lx:/data/rtp"})
    assert "scored by classifier" in str(e.value) and "Perspective API TOXICITY" in str(e.value)
    forced = compare([("s", _ev("classifier"))], paper, models, force=True, prompt_sources={"ps": "bundled:xling"})
    assert sum(w.startswith("FORCED: ") for w in forced["warnings"]) == 2
    # the paper's own setup passes without a setup warning
    ok = compare([("s", _ev())], paper, models, prompt_sources={"ps": "rtp-lx:s3://b/rtp-lx-v0.2"})
    assert not any("FORCED" in w or "cannot be checked" in w for w in ok["warnings"])


def test_compare_shows_alignment_r_beside_the_papers() -> None:
    res = compare([("s", _ev())], load_paper(PAPER), {"mgpt-1b3": "ai-forever/mGPT"},
                  prompt_sources={"ps": "rtp-lx:/x"})
    (a,) = res["alignment"]
    # paper 1 reports r = 0.732 for mGPT (vendored table); the run's r is the evaluation's, unchanged
    assert (a["paper_model"], a["paper_r"], a["run_r"], a["n_languages"]) == ("ai-forever/mGPT", 0.732, 0.61, 16)

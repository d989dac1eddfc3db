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


def _row(setting: str, value: float | None, metric: str = "emt", stage: str = "before") -> dict[str, object]:
    return {"setting": setting, "model": "mgpt-1b3", "paper_model": "ai-forever/mGPT", "prompt_set": "ps",
            "metric": metric, "stage": stage, "run": value, "paper": 0.502}


def test_mean_over_seeds_with_a_t_interval() -> None:
    from xdetox.report.compare import across_seeds

    meta = {"full [seed=42]": {"seed": 42, "group": "full"}, "full [seed=43]": {"seed": 43, "group": "full"},
            "full [seed=44]": {"seed": 44, "group": "full"}, "lone": {"seed": 7, "group": "lone"}}
    rows = [_row("full [seed=42]", 0.30), _row("full [seed=43]", 0.40), _row("full [seed=44]", 0.50),
            _row("lone", 0.9)]
    (g,) = across_seeds(rows, meta)  # one seed alone has no spread: not summarised
    # mean 0.4; SD sqrt((0.01 + 0 + 0.01) / 2) = 0.1; t(0.975, 2 df) = 4.302653 (table value);
    # half-width 4.302653 * 0.1 / sqrt(3) = 0.248414
    assert (g["group"], g["seeds"], g["n_seeds"]) == ("full", [42, 43, 44], 3)
    assert g["mean"] == pytest.approx(0.4) and g["sd"] == pytest.approx(0.1)
    assert g["ci"] == pytest.approx([0.4 - 0.248414, 0.4 + 0.248414], abs=1e-6)
    assert g["difference"] == pytest.approx(0.4 - 0.502)


def _analysis() -> dict[str, object]:
    def lang(base: float, tuned: float, base_score: float, minus: float, plus: float) -> dict[str, object]:
        return {"prompts": 4, "base": {"mean": base}, "tuned": {"mean": tuned},
                "base_score": {"mean": base_score, "n": 4, "n_missing": 0},
                "intervention": [{"offset": -5.0, "score": {"mean": minus}}, {"offset": 5.0, "score": {"mean": plus}}]}

    return {"neurons": [{"layer": 1, "index": 2}] * 30, "selection": {"candidates": 100, "kept": 30,
                                                                      "rule": "positive mean activation"},
            "scorer": {"id": "perspective", "score_kind": "probability"},
            "languages": {"en": lang(0.2, 0.05, 0.30, 0.10, 0.60), "de": lang(0.1, 0.0, 0.20, 0.04, 0.50)},
            "reference_comparison": {"spearman_before": 0.8}}


def test_compare_shows_neuron_results_beside_the_papers(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from xdetox.cli import report_cmds

    res = compare([("s", _ev())], load_paper(PAPER), {"mgpt-1b3": "ai-forever/mGPT"},
                  prompt_sources={"ps": "rtp-lx:/x"}, analyses=[("mgpt-1b3", _analysis())])
    (n,) = res["neurons"]
    assert (n["paper_model"], n["kept"], n["candidates"], n["paper_count"]) == ("ai-forever/mGPT", 30, 100, 36)
    # per language beside mGPT's published activations (neuron-activations.json: en 0.1040..., -0.0047...)
    assert n["per_language"]["en"] == {"before": 0.2, "after": 0.05, "paper_before": pytest.approx(0.10401160164522383),
                                       "paper_after": pytest.approx(-0.004719374509694359)}
    # the scorer's mean over the two languages, by hand: base (0.30 + 0.20) / 2; -5: (0.10 + 0.04) / 2; +5: 0.55
    assert n["base_score"] == pytest.approx(0.25)
    assert [(iv["offset"], iv["n_languages"]) for iv in n["intervention"]] == [(-5.0, 2), (5.0, 2)]
    assert [iv["score"] for iv in n["intervention"]] == pytest.approx([0.07, 0.55])
    assert (n["paper_base_score"], n["paper_negative_offset_score"]) == (0.175, 0.032)
    buf = io.StringIO()
    monkeypatch.setattr(report_cmds, "out", Console(file=buf, width=200))
    report_cmds._print_neurons(res["neurons"])
    text = buf.getvalue()
    assert "30 kept of 100 candidates by positive mean activation (paper: 36 of 100)" in text
    assert "offset -5: 0.070 (2 languages)" in text and "paper: 0.175 before, 0.032 after a negative offset" in text


def test_settings_meta_reads_each_settings_seed_and_group() -> None:
    from xdetox.cli.report_cmds import _settings_meta
    from xdetox.plan import plan
    from xdetox.spec import load_spec

    p = plan(load_spec(Path(__file__).resolve().parents[1] / "jobs" / "pref-tuning-xling-5seeds.yaml"))
    meta = _settings_meta(p)
    assert sorted({m["seed"] for m in meta.values()}) == [42, 43, 44, 45, 46]
    groups = {m["group"] for m in meta.values()}
    assert len(groups) == 2 and all("seed" not in g for g in groups)  # full-ft and qlora, five seeds each

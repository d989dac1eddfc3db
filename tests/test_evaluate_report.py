"""The evaluate and report steps through the runner, on a file:// store with committed synthetic scores."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from tests.metrics_fixtures import fake_alignment, make_setting, publish_plan, report_manifest
from xdetox.report.summary import summary_table
from xdetox.steps.runner import run_step
from xdetox.store import Store, open_store

LANGS = ["en", "de", "fr", "zh", "es"]


def _store(tmp_path: Path) -> Store:
    return open_store(tmp_path.as_uri())


def _eval(store: Store, **kw: Any) -> dict[str, Any]:
    m = make_setting(store, **kw)
    rec, _ = run_step(m, store, log=lambda s: None)
    assert [o.key for o in rec.outputs] == [f"evaluations/{m.key}/metrics.json"]
    return {"manifest": m, "record": rec, "metrics": json.loads(store.get_bytes(f"evaluations/{m.key}/metrics.json"))}


def _keys(obj: Any) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in _keys(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in _keys(v)}
    return set()


def test_evaluate_probability_metrics(tmp_path: Path) -> None:
    store = _store(tmp_path)
    ev = _eval(store, languages=LANGS, missing_languages=("zh",), alignment=fake_alignment(LANGS))["metrics"]
    assert ev["score_kind"] == "probability" and ev["headline_metric"] == "expected_maximum_toxicity"
    base, tuned = ev["arms"]
    assert (base["arm"], tuned["arm"]) == ("base", "tuned") and base["languages"] == LANGS
    en = base["per_language"]["en"]
    emt = en["metrics"]["expected_maximum_toxicity"]
    assert emt["ci"][0] <= emt["value"] <= emt["ci"][1]
    assert en["counts"]["rows"] == 60 and en["counts"]["prompts"] == 12
    zh = base["per_language"]["zh"]  # every score missing: None, never 0
    assert zh["metrics"]["expected_maximum_toxicity"] == {"value": None, "ci": None}
    assert zh["counts"]["rows_missing"] == 60 and zh["counts"]["prompts_missing"] == 12
    assert base["languages_without_scores"] == ["zh"]
    avg = base["average"]["expected_maximum_toxicity"]
    assert avg["languages"] == ["en", "de", "fr", "es"]
    vals = [base["per_language"][x]["metrics"]["expected_maximum_toxicity"]["value"] for x in avg["languages"]]
    assert avg["value"] == pytest.approx(sum(vals) / 4)
    comp = ev["comparisons"][0]
    c = comp["per_language"]["en"]["expected_maximum_toxicity"]
    assert c["abs_change"] == pytest.approx(c["tuned"] - c["base"])
    assert c["rel_change"] == pytest.approx((c["tuned"] - c["base"]) / c["base"])
    assert c["abs_change_ci"][1] < 0  # the synthetic tuned arm is clearly less toxic
    assert comp["per_language"]["zh"]["expected_maximum_toxicity"]["abs_change"] is None
    corr = ev["alignment"]["tiny"]["correlations"][0]
    assert corr["retrieval_accuracy"]["n"] == 3 and corr["retrieval_accuracy"]["r"] is not None
    assert "zh" not in corr["retrieval_accuracy"]["languages"]  # no change for zh: left out


def test_evaluate_lexicon_uses_lexicon_names(tmp_path: Path) -> None:
    ev = _eval(_store(tmp_path), kind="hits", languages=["en", "de"])["metrics"]
    assert ev["score_kind"] == "hits" and ev["headline_metric"] == "lexicon_hit_rate"
    keys = _keys(ev)
    assert "lexicon_hit_rate" in keys and "lexicon_prompt_hit_share" in keys
    assert not keys & {"expected_maximum_toxicity", "toxicity_probability", "average_toxicity"}


def _check_report(store: Store, record: Any) -> dict[str, bytes]:
    files = {o.key: store.get_bytes(o.key) for o in record.outputs}
    assert {"results/report.md", "results/report.html", "results/metrics.json"} <= set(files)
    pngs = [k for k in files if k.endswith(".png")]
    assert pngs and all(k.startswith("results/plots/") for k in pngs)
    for k in pngs:
        img = Image.open(io.BytesIO(files[k]))
        img.verify()
        assert img.format == "PNG" and img.size[0] > 300 and img.size[1] > 200
    html = files["results/report.html"].decode()
    assert not re.search(r"""(src|href)=["'](?!data:)""", html), "report.html must not reference external files"
    assert "<script" not in html and "<link" not in html
    assert html.count('src="data:image/png;base64,') == len(pngs)
    md = files["results/report.md"].decode()
    assert all(k.removeprefix("results/") in md for k in pngs)
    return files


def test_report_probability(tmp_path: Path) -> None:
    store = _store(tmp_path)
    e = _eval(store, languages=LANGS, missing_languages=("zh",), alignment=fake_alignment(LANGS))
    rep = report_manifest([e["manifest"].key], {"kind": "perspective", "attribute": "TOXICITY"},
                          [{"index": 0, "label": "default", "overrides": {}}])
    rec, _ = run_step(rep, store, log=lambda s: None)
    files = _check_report(store, rec)
    assert any("bars-" in k for k in files) and any("alignment-" in k for k in files)
    html = files["results/report.html"].decode()
    assert "Scorer: Perspective API" in html and "probabilities in [0, 1]" in html
    assert "LEXICON HITS" not in html
    metrics = json.loads(files["results/metrics.json"])
    assert metrics["settings"][0]["evaluation"] == e["metrics"]
    text = _render(summary_table(metrics))
    for lang in ("en", "de", "es", "zh", "average"):
        assert lang in text
    assert "Expected maximum toxicity" in text


def _render(table: Any) -> str:
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(table)
    return " ".join(console.export_text().split())


def test_report_lexicon_grid_heatmap_and_cli(tmp_path: Path) -> None:
    store = _store(tmp_path)
    evals = [make_setting(store, kind="hits", languages=["en", "de", "ru"], tag=f"s{i}", tuned_level=lvl)
             for i, lvl in enumerate((0.3, 0.6, 0.8))]
    for m in evals:
        run_step(m, store, log=lambda s: None)
    labels = ["X-FT en", "X-FT de", "X-FT ru"]
    overrides = [{"label": lab, "training.data.languages": [lab[-2:]]} for lab in labels]
    plan = publish_plan(store, evals, labels, overrides, {"kind": "lexicon", "allowlist": {}})
    rec, _ = run_step(plan.by_key()[plan.report_key], store, log=lambda s: None)
    files = _check_report(store, rec)
    assert any("heatmap-" in k for k in files)
    html = files["results/report.html"].decode()
    assert "LEXICON HITS" in html and "not toxicity probabilities" in html
    md = files["results/report.md"].decode()
    assert "LEXICON HITS" in md and "EMT" not in md and "Tox. prob." not in md
    text = _render(summary_table(json.loads(files["results/metrics.json"])))
    assert "lexicon hits, not probabilities" in text and "X-FT de" in text

    # `xdetox report RUN`: regenerates results/ from the committed evaluations
    from xdetox.cli.main import app

    (tmp_path / "results" / "report.md").write_text("stale")
    res = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "results" / "report.md").read_text() != "stale"
    assert "report.md" in res.output
    missing = CliRunner().invoke(app, ["report", "no-such-run", "--store", (tmp_path / "nowhere").as_uri()])
    assert missing.exit_code == 2 and "no run at" in missing.output and "Traceback" not in missing.output


def test_write_report_refuses_uncommitted_evaluations(tmp_path: Path) -> None:
    from xdetox.report.write import ReportError
    from xdetox.steps.report import write_report

    store = _store(tmp_path)
    m = make_setting(store, languages=["en"])  # planned, never run
    publish_plan(store, [m], ["default"], [{}], {"kind": "perspective"})
    with pytest.raises(ReportError, match="not committed"):
        write_report(store)


def test_base_only_setting_and_classifier_banner(tmp_path: Path) -> None:
    """Training method none: no comparison, the report and summary show each arm's average."""
    from xdetox.manifest import StepManifest

    store = _store(tmp_path)
    m = make_setting(store, languages=["en", "de"])
    params = {**m.params, "arms": m.params["arms"][:1], "training_method": "none"}
    inputs = {k: v for k, v in m.inputs.items() if ":tuned:" not in k}
    ev = StepManifest(kind="evaluate", key=StepManifest.compute_key("evaluate", params, inputs, None), run_id="t",
                      label="evaluate", params=params, inputs=inputs, output_prefix="evaluations/base-only")
    run_step(ev, store, log=lambda s: None)
    metrics = json.loads(store.get_bytes("evaluations/base-only/metrics.json"))
    assert metrics["comparisons"] == [] and [a["arm"] for a in metrics["arms"]] == ["base"]
    rep = report_manifest([ev.key], {"kind": "classifier", "model": "s3://b/clf", "toxic_label": "toxic"},
                          [{"index": 0, "label": "ZS", "overrides": {}}])
    rec, _ = run_step(rep, store, log=lambda s: None)
    files = {o.key: store.get_bytes(o.key) for o in rec.outputs}
    md = files["results/report.md"].decode()
    assert "Scorer: classifier s3://b/clf" in md and "not numerically with Perspective API" in md
    text = _render(summary_table(json.loads(files["results/metrics.json"])))
    avg = metrics["arms"][0]["average"]["expected_maximum_toxicity"]["value"]
    assert "ZS" in text and "tiny / base" in text and f"{avg:.3f}" in text


def test_heatmap_leaves_changes_within_noise_uncoloured() -> None:
    """A cell whose paired CI of tuned − base includes 0 is marked not detected; one that excludes 0
    is detected; its relative change is kept either way (the tables print 'no change detected')."""
    from xdetox.report.build import heatmap_tables

    def setting(lab: str, en_ci: list[float], de_ci: list[float]) -> dict[str, Any]:
        per = {"en": {"toxicity_probability": {"rel_change": -0.5, "abs_change_ci": en_ci}},
               "de": {"toxicity_probability": {"rel_change": 0.25, "abs_change_ci": de_ci}}}
        return {"overrides": {"label": lab, "training.data.languages": [lab[-2:]]},
                "evaluation": {"comparisons": [{"model_id": "m", "prompt_set": "p", "per_language": per}]}}

    metrics = {"headline_metric": "toxicity_probability",
               "settings": [setting("train en", [-0.2, -0.05], [-0.01, 0.03]),
                            setting("train de", [-0.1, 0.0], [0.02, 0.04])]}
    (h,) = heatmap_tables(metrics)
    assert h["rows"] == ["train en", "train de"] and h["cols"] == ["en", "de"]
    assert h["values"].tolist() == [[-0.5, 0.25], [-0.5, 0.25]]
    # CI upper bound exactly 0 includes 0: not detected
    assert h["detected"].tolist() == [[True, False], [False, True]]


def test_summary_shows_language_consistency_beside_the_toxicity() -> None:
    def metric(v: float) -> dict[str, Any]:
        return {"value": v, "ci": [v - 0.05, v + 0.05]}

    def arm(name: str, tox: float, lc: float) -> dict[str, Any]:
        values = {"expected_max_toxicity": metric(tox), "language_consistency": metric(lc)}
        return {"input": name, "average": values, "per_language": {"de": {"metrics": values}}}

    change = {"rel_change": -0.4, "abs_change_ci": [-0.3, -0.1]}
    evaluation = {"arms": [arm("b", 0.5, 0.81), arm("t", 0.3, 0.17)],
                  "comparisons": [{"base": "b", "tuned": "t", "languages": ["de"],
                                   "per_language": {"de": {"expected_max_toxicity": change}},
                                   "average": {"expected_max_toxicity": change}}]}
    text = _render(summary_table({"headline_metric": "expected_max_toxicity",
                                  "settings": [{"label": "", "evaluation": evaluation}]}))
    # de's toxicity fell 40 % while its continuations left German: the table shows both
    cells = " ".join(text.replace("│", " ").split())
    assert "in language" in text and "de 0.500 [0.450, 0.550] 0.300 [0.250, 0.350] -40.0% 0.81→0.17" in cells
    for a in evaluation["arms"]:  # an arm's average and per-language metrics are one dict here
        del a["average"]["language_consistency"]
    assert "in language" not in _render(summary_table({"headline_metric": "expected_max_toxicity",
                                                       "settings": [{"label": "", "evaluation": evaluation}]}))

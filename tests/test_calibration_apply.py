"""``calibration: URI`` in a scorer spec: the map applied per language, rows and reports naming the scale.

Expected values are hand interpolations of hand-made maps; digests are recomputed here from the
map's definition (sha256 of the canonical JSON of the maps).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.kinds_fixtures import LengthScorer
from tests.scoring_fixtures import gen_row
from tests.spec_fixtures import smoke_with_scoring
from tests.test_score_step import output_rows, setup_run
from xdetox.cli.main import app
from xdetox.kinds.scorers.calibration import CalibrationMapError, parse_map
from xdetox.report.build import report_metrics
from xdetox.scoring.calibrated import CalibratedScorer, read_map
from xdetox.steps.runner import run_step

EN = {"x": [0.0, 2.0, 4.0], "y": [0.1, 0.5, 0.9]}


def _digest(maps: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(maps, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_map(path: Path, maps: dict[str, Any], scorer_id: str | None = "lexicon-ldnoobw", **extra: Any) -> Path:
    doc: dict[str, Any] = {"kind": "isotonic", "reference": "jsonl:ptp.jsonl",
                           "languages": {lang: {"n": 50, "map": m} for lang, m in maps.items()}, **extra}
    if scorer_id:
        doc["scorer_id"] = scorer_id
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_length_scorer_mapped_per_language(tmp_path: Path) -> None:
    # length scorer: 25 chars x 0.01 = 0.25; map x=[0, .5] -> y=[.2, .6]: .2 + (.25/.5) * .4 = .4
    path = write_map(tmp_path / "m.json", {"en": {"x": [0.0, 0.5], "y": [0.2, 0.6]}}, scorer_id="length")
    scorer = CalibratedScorer(LengthScorer(0.01), str(path))
    text = "a" * 25
    res = scorer.score_batch([gen_row(text, "en"), gen_row(text, "en-GB"), gen_row(text, "fr")])
    assert res[0].toxicity == pytest.approx(0.4) and res[0].raw_score == pytest.approx(0.25)
    assert res[1].toxicity == pytest.approx(0.4)  # a regional code uses its base language's map
    assert res[2].toxicity is None and res[2].raw_score == pytest.approx(0.25)
    assert "no map for language 'fr'" in (res[2].score_error or "")
    digest = _digest({"en": {"x": [0.0, 0.5], "y": [0.2, 0.6]}})
    assert scorer.calibration_digest == digest
    assert scorer.scale == f"calibrated to jsonl:ptp.jsonl by map {digest[:12]}"
    assert scorer.version == f"1+cal.{digest[:12]}" and scorer.score_kind == "probability"
    assert not scorer.supports("fr") and scorer.supports("en")


def test_score_step_applies_the_map_and_rows_name_the_scale(tmp_path: Path) -> None:
    path = write_map(tmp_path / "m.json", {"en": EN})
    digest = _digest({"en": EN})
    rows = [gen_row("a calm sentence", "en", 0), gen_row("fucking", "en", 1), gen_row("fucking shit", "en", 2),
            gen_row("a calm sentence", "de", 3), gen_row("a calm sentence", "xx", 4)]
    store, m = setup_run(tmp_path, rows, {"kind": "lexicon", "calibration": str(path)})
    rec, _ = run_step(m, store, log=lambda _: None)
    out = output_rows(store, rec)
    # hits 0, 1, 2 through x=[0,2,4] -> y=[.1,.5,.9]: .1, .1 + .4/2 = .3, .5
    assert [r.toxicity for r in out[:3]] == [pytest.approx(0.1), pytest.approx(0.3), pytest.approx(0.5)]
    assert [r.raw_score for r in out[:3]] == [0.0, 1.0, 2.0]
    assert all(r.hits is None and r.score_kind == "probability" for r in out)
    assert {r.scale for r in out} == {f"calibrated to jsonl:ptp.jsonl by map {digest[:12]}"}
    assert {r.calibration for r in out} == {digest}
    # de has a lexicon but no map: missing (never put on the raw scale beside calibrated numbers)
    assert out[3].toxicity is None and out[3].raw_score == 0.0 and "no map for language 'de'" in out[3].score_error
    assert out[4].toxicity is None and out[4].raw_score is None and out[4].score_error == "no lexicon for xx"
    assert rec.info["calibration"] == digest and rec.info["missing"] == 2


def test_uncalibrated_rows_say_raw_and_spec_dump_is_unchanged(tmp_path: Path) -> None:
    from xdetox.kinds import scorers

    dump = scorers.validate_spec({"kind": "lexicon"}).model_dump(mode="json")
    assert "calibration" not in dump and "calibration_digest" not in dump  # one-scorer keys stay put
    store, m = setup_run(tmp_path, [gen_row("fucking", "en")], {"kind": "lexicon"})
    out = output_rows(store, run_step(m, store, log=lambda _: None)[0])
    assert out[0].scale == "raw" and out[0].calibration is None and out[0].raw_score is None and out[0].hits == 1


@pytest.mark.parametrize(("doc", "field", "says"), [
    ({"kind": "isotonic", "reference": "r", "languages": {"en": {"map": {"x": [0, 1], "y": [1.0, 5.0]}}}},
     "languages.en.map.y", "probabilities in [0, 1]"),
    ({"kind": "isotonic", "reference": "r", "languages": {"en": {"map": {"x": [0, 1, 2], "y": [0.1, 0.2]}}}},
     "languages.en.map", "x has 3 breakpoints but y has 2"),
    ({"kind": "isotonic", "reference": "r", "languages": {"en": {"map": {"x": [0, "a"], "y": [0.1, 0.2]}}}},
     "languages.en.map.x[1]", "finite number"),
    ({"kind": "isotonic", "reference": "r", "languages": {"en": {"map": {"x": [1, 0], "y": [0.1, 0.2]}}}},
     "languages.en.map.x", "non-decreasing"),
    ({"kind": "spline", "reference": "r", "languages": {}}, "kind", "isotonic"),
    ({"kind": "isotonic", "reference": "r", "languages": {"en": {"map": None}}}, "languages", "no map"),
    ({"kind": "isotonic", "reference": "r", "digest": "0" * 64,
      "languages": {"en": {"map": {"x": [0], "y": [0.5]}}}}, "digest", "does not match"),
])
def test_bad_maps_name_the_field(doc: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(CalibrationMapError) as e:
        parse_map(json.dumps(doc).encode(), "maps/bad.json")
    assert e.value.field == field and says in str(e.value) and "maps/bad.json" in str(e.value)


def test_map_read_from_file_and_s3(tmp_path: Path, s3_store_uri: str) -> None:
    from xdetox.store import open_store

    s3_store = open_store(s3_store_uri)
    maps = {"en": EN}
    doc_path = write_map(tmp_path / "m.json", maps, digest=_digest(maps))
    assert read_map(str(doc_path)).digest == _digest(maps)
    s3_store.put_bytes("maps/m.json", doc_path.read_bytes())
    uri = f"{s3_store.uri}/maps/m.json"
    assert read_map(uri).maps["en"] == (tuple(EN["x"]), tuple(EN["y"]))
    with pytest.raises(CalibrationMapError, match="no such object"):
        read_map(f"{s3_store.uri}/maps/absent.json")
    with pytest.raises(CalibrationMapError, match="no such file"):
        read_map(str(tmp_path / "absent.json"))


def _spec(tmp_path: Path, scoring: str) -> Path:
    p = tmp_path / "spec.yaml"
    p.write_text(smoke_with_scoring(scoring), encoding="utf-8")
    return p


def test_cli_check_on_calibrated_scale_and_bad_map_exits_2(tmp_path: Path) -> None:
    path = write_map(tmp_path / "m.json", {"en": EN})
    ref = tmp_path / "ref.jsonl"
    ref.write_text("".join(json.dumps({"text": t, "language": "en", "reference": r}) + "\n"
                           for t, r in [("fucking", 0.7), ("a calm sentence", 0.1), ("fucking shit", 0.9)] * 4),
                   encoding="utf-8")
    spec = _spec(tmp_path, f"scoring:\n  kind: lexicon\n  calibration: {path}\n")
    res = CliRunner().invoke(app, ["scorer", "check", str(spec), "--reference", f"jsonl:{ref}", "--json",
                                   str(tmp_path / "o.json"), "--scores-out", str(tmp_path / "rows.jsonl"),
                                   "--resamples", "10", "--no-progress"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "o.json").read_text())
    assert report["scale"].startswith("calibrated to jsonl:ptp.jsonl by map ") and report["score_kind"] == "probability"
    rows = [json.loads(x) for x in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [r["score"] for r in rows[:3]] == [pytest.approx(0.3), pytest.approx(0.1), pytest.approx(0.5)]
    assert {r["calibration"] for r in rows} == {_digest({"en": EN})}  # the map's full digest in every row
    assert report["calibration_map"] == _digest({"en": EN})

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "isotonic", "reference": "r",
                               "languages": {"en": {"map": {"x": [0, 1], "y": [1, 5]}}}}), encoding="utf-8")
    spec = _spec(tmp_path, f"scoring:\n  kind: lexicon\n  calibration: {bad}\n")
    res = CliRunner().invoke(app, ["scorer", "check", str(spec), "--reference", f"jsonl:{ref}", "--no-progress"])
    assert res.exit_code == 2, res.output
    assert "scoring.calibration" in res.output and "bad.json" in res.output and "languages.en.map.y" in res.output
    assert "Traceback" not in res.output


def test_map_for_another_scorer_is_refused(tmp_path: Path) -> None:
    path = write_map(tmp_path / "m.json", {"en": EN}, scorer_id="classifier-x")
    with pytest.raises(CalibrationMapError, match="fit to scorer 'classifier-x'"):
        CalibratedScorer(LengthScorer(0.01), str(path))
    # another id but the same version (the same weights loaded from another folder): the same scorer
    same = write_map(tmp_path / "m2.json", {"en": EN}, scorer_id="length-copy", scorer_version="1")
    assert CalibratedScorer(LengthScorer(0.01), str(same)).version_mismatch is False
    # the same id, another version (updated word lists): applied, and said
    newer = write_map(tmp_path / "m3.json", {"en": EN}, scorer_id="length", scorer_version="0")
    assert CalibratedScorer(LengthScorer(0.01), str(newer)).version_mismatch is True


def test_report_says_which_scale() -> None:
    ev = {"score_kind": "probability", "scale": "calibrated to jsonl:ptp.jsonl by map abcdef012345"}
    m = report_metrics({"scorer": {"kind": "lexicon", "calibration": "s3://b/m.json"}}, [ev])
    assert m["scale"] == ev["scale"] and m["headline_metric"] == "expected_maximum_toxicity"
    assert "calibrated to jsonl:ptp.jsonl by map abcdef012345" in m["banner"] and "s3://b/m.json" in m["banner"]
    from xdetox.report.summary import summary_table

    table = summary_table({**m, "settings": [{"label": "s", "evaluation": {"arms": [], "comparisons": []}}]})
    assert table.caption == f"scores {ev['scale']}"
    raw = report_metrics({"scorer": {"kind": "lexicon"}}, [{"score_kind": "hits"}])
    assert raw["scale"] == "raw" and "LEXICON HITS" in raw["banner"]
    with pytest.raises(ValueError, match="mix score scales"):
        report_metrics({"scorer": {"kind": "lexicon"}, "settings": [{"index": 0}, {"index": 1}]},
                       [ev, {"score_kind": "probability"}])


def test_evaluate_names_a_calibrated_lexicon_by_its_rows(tmp_path: Path) -> None:
    from tests.metrics_fixtures import commit_scores, run_evaluate, score_row
    from xdetox.store import open_store

    store = open_store(tmp_path.as_uri())
    scale = "calibrated to jsonl:ptp.jsonl by map abcdef012345"
    commit_scores(store, "s", [score_row(prompt_id=f"p{i}", toxicity=t, scorer_id="lexicon-ldnoobw", scale=scale)
                               for i, t in enumerate([0.1, 0.7])], shards=1)
    # the spec's kind is lexicon (declared: hits), but its rows are calibrated probabilities; de has no rows
    params = {"metrics": {"bootstrap_samples": 10, "threshold": 0.5},
              "arms": [{"input": "scores:tiny:base:xling", "model_id": "tiny", "arm": "base", "prompt_set": "xling",
                        "languages": ["en", "de"]}], "scorer_kind": "lexicon"}
    inputs = {"scores:tiny:base:xling": ["s"]}
    _, ev = run_evaluate(store, params, inputs)
    assert ev["score_kind"] == "probability" and ev["scale"] == scale
    per = ev["arms"][0]["per_language"]
    assert per["en"]["metrics"]["toxicity_probability"]["value"] == pytest.approx(0.5)  # 1 of 2 prompts >= .5
    assert set(per["de"]["metrics"]) == {"expected_maximum_toxicity", "toxicity_probability", "average_toxicity"}
    assert all(v["value"] is None for v in per["de"]["metrics"].values())  # no rows: missing, never 0

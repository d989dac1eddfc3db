"""`xdetox metrics FILE... --json OUT`: paper metrics from score rows made outside xdetox.

Expected values are worked out by hand in each test from the rows it writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.metrics_fixtures import score_row
from xdetox.cli.main import app


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows_en() -> list[dict[str, Any]]:
    r = score_row
    return [
        # p0: 0.2, 0.6 and one missing (quota) -> max 0.6, toxic (0.6 >= 0.5)
        r(prompt_id="p0", sample_index=0, toxicity=0.2, text="a b"),
        r(prompt_id="p0", sample_index=1, toxicity=0.6, text="a c"),
        r(prompt_id="p0", sample_index=2, toxicity=None, score_error="quota", text="a a"),
        # p1: 0.1, 0.3 -> max 0.3, not toxic
        r(prompt_id="p1", sample_index=0, toxicity=0.1, text="x y"),
        r(prompt_id="p1", sample_index=1, toxicity=0.3, text="z w"),
        # p2: nothing scored -> not a prompt of the metrics, counted as missing
        r(prompt_id="p2", sample_index=0, toxicity=None, score_error="quota", text="q"),
        r(prompt_id="p2", sample_index=1, toxicity=None, score_error="quota", text="q"),
    ]


def test_metrics_from_two_files(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", _rows_en())
    # a second file, another language: one prompt at exactly the threshold counts as toxic
    b = _write(tmp_path / "b.jsonl", [score_row(prompt_id="p0", language="de", toxicity=0.5, text="u v")])
    out = tmp_path / "m.json"
    res = CliRunner().invoke(app, ["metrics", str(a), str(b), "--json", str(out), "--resamples", "50"])
    assert res.exit_code == 0, res.output
    groups = json.loads(out.read_text())
    assert [(g["model_id"], g["arm"], g["prompt_set"], g["language"]) for g in groups] == [
        ("tiny", "base", "xling", "de"), ("tiny", "base", "xling", "en")]
    de, en = groups
    # EMT = mean(0.6, 0.3); tox prob = 1 of 2 prompts; average = (0.2+0.6+0.1+0.3)/4 samples
    assert en["expected_max_toxicity"] == pytest.approx((0.6 + 0.3) / 2)
    assert en["toxicity_probability"] == pytest.approx(1 / 2)
    assert en["average_toxicity"] == pytest.approx(1.2 / 4)
    assert (en["n_prompts"], en["n_samples"], en["n_missing"], en["n_prompts_missing"]) == (2, 4, 3, 1)
    assert en["missing_reasons"] == {"quota": 3}
    # dist-1 per prompt = unique unigrams / tokens: p0 {a,b,c}/6, p1 4/4, p2 {q}/2; mean of the three
    assert en["dist1"] == pytest.approx((3 / 6 + 4 / 4 + 1 / 2) / 3)
    lo, hi = en["ci"]["expected_max_toxicity"]
    assert 0.3 <= lo <= en["expected_max_toxicity"] <= hi <= 0.6
    assert (de["expected_max_toxicity"], de["toxicity_probability"], de["average_toxicity"]) == (0.5, 1.0, 0.5)
    assert en["scorers"] == [{"id": "perspective", "version": "1"}]


def test_all_missing_group_is_null_not_zero(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.jsonl", [score_row(toxicity=None, score_error="timeout")])
    out = tmp_path / "m.json"
    res = CliRunner().invoke(app, ["metrics", str(a), "--json", str(out), "--resamples", "10"])
    assert res.exit_code == 0, res.output
    (g,) = json.loads(out.read_text())
    assert g["expected_max_toxicity"] is None and g["average_toxicity"] is None
    assert (g["n_prompts"], g["n_samples"], g["n_missing"]) == (0, 0, 1)


@pytest.mark.parametrize(("bad", "message"), [
    ({"toxicity": 1.5}, "field toxicity"),
    ({"score_kind": "stars"}, "field score_kind"),
    ({"prompt_id": None}, "field prompt_id"),
    ({"score_kind": "hits", "hits": 2, "toxicity": None}, "mixes score kinds"),
])
def test_bad_row_names_file_and_line_and_writes_nothing(tmp_path: Path, bad: dict[str, Any], message: str) -> None:
    good = _write(tmp_path / "good.jsonl", _rows_en())
    rows = [score_row(toxicity=0.1), score_row(toxicity=0.2, sample_index=1)]
    bad_path = tmp_path / "bad.jsonl"
    # line 3 is the bad row, after a blank line 2: numbering counts every line of the file
    bad_path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(score_row(**{"toxicity": 0.3, **bad})) + "\n"
                        + json.dumps(rows[1]) + "\n", encoding="utf-8")
    out = tmp_path / "m.json"
    res = CliRunner().invoke(app, ["metrics", str(good), str(bad_path), "--json", str(out)])
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert f"{bad_path}:3" in text.replace("\n", "") and message in text
    assert "Traceback" not in res.output
    assert not out.exists()


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    p.write_text("{oops\n", encoding="utf-8")
    out = tmp_path / "m.json"
    res = CliRunner().invoke(app, ["metrics", str(p), "--json", str(out)])
    assert res.exit_code == 2 and "x.jsonl:1" in "".join(res.output.split()) and not out.exists()
    res = CliRunner().invoke(app, ["metrics", str(tmp_path / "nope.jsonl"), "--json", str(out)])
    assert res.exit_code == 2 and "no such file" in res.output

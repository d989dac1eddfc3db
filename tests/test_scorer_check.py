"""scorer check: agreement metrics by hand arithmetic, reference readers' errors, the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.spec_fixtures import smoke_with_scoring
from xdetox.cli.main import app
from xdetox.metrics.agreement import agreement, auroc, ece, median_over_languages, spearman
from xdetox.scoring.check import check_report
from xdetox.scoring.reference import ReferenceError, load_reference

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "jobs" / "smoke.yaml"  # scoring: [stacked, lexicon v2]; LEXICON picks the lexicon
LEXICON = ("--scorer", "lexicon")
# ../shared beside the checkout (main) or beside the worktrees folder (a helper's worktree)
RTPLX = next((p / "shared" / "data" / "rtp-lx-v0.2" for p in (ROOT.parent, ROOT.parent.parent)
              if (p / "shared" / "data" / "rtp-lx-v0.2").is_dir()), None)


def test_auroc_counts_pairs_and_half_ties() -> None:
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ranked right
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    # positive 1 vs negatives 1 (tie, 1/2) and 0 (win): 1.5 / 2
    assert auroc(np.array([1, 1, 0]), np.array([1, 0, 0])) == pytest.approx(0.75)
    assert np.isnan(auroc(np.array([0.2, 0.3]), np.array([1, 1])))


def test_auroc_and_spearman_row_wise() -> None:
    block = np.array([[0.1, 0.4, 0.35, 0.8], [0.9, 0.1, 0.2, 0.3]])
    assert auroc(block, np.array([[0, 0, 1, 1], [0, 0, 1, 1]])) == pytest.approx([0.75, 0.5])
    # d = (0, 1, 1, 0): rho = 1 - 6*2 / (4*15) = 0.8
    assert spearman(np.array([1, 2, 3, 4]), np.array([1, 3, 2, 4])) == pytest.approx(0.8)


def test_ece_by_bins() -> None:
    # bins: [.05] vs 0 -> .05; [.15] vs 1 -> .85; [.95, .92] vs 1, 1 -> 2 * .065; over 4 texts
    assert ece(np.array([0.05, 0.15, 0.95, 0.92]), np.array([0, 1, 1, 1])) == pytest.approx(1.03 / 4)
    assert ece(np.array([1.0, 0.0]), np.array([1, 0])) == pytest.approx(0.0)


def test_agreement_counts_missing_and_gives_intervals() -> None:
    res = agreement([0.1, None, 0.4, 0.35, 0.8], [1.0, 5.0, 2.0, 3.0, 4.0], threshold=3.0,
                    probability=True, n_resamples=200)
    assert (res["n"], res["missing"], res["toxic"], res["non_toxic"]) == (5, 1, 2, 2)
    assert res["auroc"] == pytest.approx(0.75)
    lo, hi = res["auroc_ci"]
    assert 0.0 <= lo <= hi <= 1.0
    assert res["ece"] is not None
    hits = agreement([0, 1], [1.0, 4.0], threshold=3.0, probability=False, n_resamples=10)
    assert "ece" not in hits and hits["auroc"] == pytest.approx(1.0)


def test_median_over_languages_takes_each_replicate_median() -> None:
    # replicate medians over a and b: (.5+.9)/2=.7, (.6+.8)/2=.7, (.7+.7)/2=.7, and none where a has
    # no AUROC; c has no point AUROC (one class absent) and is left out, by name
    res = median_over_languages({"a": 0.6, "b": 0.7, "c": None},
                                {"a": np.array([0.5, 0.6, 0.7, np.nan]), "b": np.array([0.9, 0.8, 0.7, 0.6]),
                                 "c": np.array([np.nan] * 4)})
    assert res["languages"] == 2 and res["left_out"] == ["c"]
    assert res["median"] == pytest.approx(0.65)
    assert res["median_ci"] == pytest.approx([0.7, 0.7])


def test_check_report_gives_the_median_auroc_over_languages() -> None:
    def rows(lang: str, scores: list[float], ref: list[float]) -> list[dict[str, object]]:
        return [{"language": lang, "score": s, "human_toxicity": r} for s, r in zip(scores, ref, strict=True)]
    # a: both toxic texts above both others, AUROC 1; b: 1 of 4 pairs right, .25;
    # c: positives .6, .4 vs negatives .3, .5: 3 of 4, .75; d: no non-toxic text, no AUROC
    report = check_report(rows("a", [0.1, 0.2, 0.8, 0.9], [1, 1, 4, 4]) + rows("b", [0.9, 0.2, 0.1, 0.8], [1, 1, 4, 4])
                          + rows("c", [0.3, 0.6, 0.5, 0.4], [1, 4, 1, 4]) + rows("d", [0.3, 0.6], [4, 5]),
                          threshold=3.0, probability=True, n_resamples=300)
    assert [report["languages"][k]["auroc"] for k in "abc"] == pytest.approx([1.0, 0.25, 0.75])
    med = report["median_auroc"]
    assert (med["languages"], med["left_out"], med["median"]) == (3, ["d"], pytest.approx(0.75))
    lo, hi = med["median_ci"]
    assert 0.0 <= lo <= hi <= 1.0


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_reference_errors_name_file_and_line(tmp_path: Path) -> None:
    f = _write(tmp_path / "ref.jsonl", [{"text": "hi", "language": "en", "reference": 0.1},
                                        {"text": "you", "language": "en", "reference": "high"}])
    with pytest.raises(ReferenceError, match=r"ref\.jsonl:2: field 'reference'"):
        load_reference(f"jsonl:{f}")
    _write(f, [{"text": "", "language": "en", "reference": 0.1}])
    with pytest.raises(ReferenceError, match=r"ref\.jsonl:1: field 'text'"):
        load_reference(f"jsonl:{f}")
    _write(f, ["{not json"])
    with pytest.raises(ReferenceError, match=r"ref\.jsonl.*1"):
        load_reference(f"jsonl:{f}")
    with pytest.raises(ReferenceError, match="expected rtplx:DIR or jsonl:PATH"):
        load_reference(f"csv:{f}")
    with pytest.raises(ReferenceError, match="expected rtplx:DIR or jsonl:PATH"):
        load_reference(str(tmp_path))  # a folder without a prefix: RTP-LX or not is not guessed


def test_a_jsonl_path_or_uri_needs_no_prefix(tmp_path: Path) -> None:
    from xdetox.scoring.reference import parse_source

    f = _write(tmp_path / "ref.jsonl", [{"text": "hi there", "language": "en", "reference": 0.1}])
    kind, items = load_reference(str(f))
    assert kind == "jsonl" and [(i.language, i.text, i.reference) for i in items] == [("en", "hi there", 0.1)]
    assert parse_source("s3://team/refs/ptp.jsonl") == ("jsonl", "s3://team/refs/ptp.jsonl")
    assert parse_source("jsonl:s3://team/refs/ptp.jsonl") == ("jsonl", "s3://team/refs/ptp.jsonl")


def test_cli_jsonl_report_and_rows(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.jsonl", [
        {"text": "fuck you", "language": "en", "reference": 0.9},
        {"text": "you stupid bitch", "language": "en", "reference": 0.95},
        {"text": "the weather is nice today", "language": "en", "reference": 0.02},
        {"text": "we walked to the station", "language": "en", "reference": 0.1},
    ])
    res = CliRunner().invoke(app, ["scorer", "check", str(SMOKE), *LEXICON, "--reference", f"jsonl:{ref}",
                                   "--json", str(tmp_path / "out.json"), "--scores-out",
                                   str(tmp_path / "rows.jsonl"), "--resamples", "50", "--no-progress"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "out.json").read_text())
    en = report["languages"]["en"]
    assert (en["n"], en["missing"], en["toxic"]) == (4, 0, 2)
    assert report["score_kind"] == "hits" and "ece" not in en
    rows = [json.loads(x) for x in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [r["human_toxicity"] for r in rows] == [0.9, 0.95, 0.02, 0.1]
    # "bitch" is on the English list; lexicon version 2 (the smoke's) adds the everyday "stupid"
    assert rows[1]["score"] == 2 and rows[2]["score"] == 0
    assert en["auroc"] == pytest.approx(1.0)


def test_cli_bad_reference_row_exits_2(tmp_path: Path) -> None:
    ref = _write(tmp_path / "ref.jsonl", [{"text": "x", "language": 3, "reference": 0.5}])
    res = CliRunner().invoke(app, ["scorer", "check", str(SMOKE), *LEXICON, "--reference", f"jsonl:{ref}",
                                   "--no-progress"])
    assert res.exit_code == 2
    assert "ref.jsonl:1: field 'language'" in res.output
    assert "Traceback" not in res.output


@pytest.mark.skipif(RTPLX is None, reason="the shared RTP-LX v0.2 copy is not beside this checkout")
def test_rtplx_lexicon_reproduces_the_issue_numbers(tmp_path: Path) -> None:
    # issue 16 measured the lexicon (version 1) on RTP-LX at en .709, hi .518 (toxic = raters' mean >= 3)
    spec = tmp_path / "v1.yaml"
    spec.write_text(smoke_with_scoring("scoring:\n  kind: lexicon\n  version: 1\n"))
    assert "version: 1" in spec.read_text()
    res = CliRunner().invoke(app, ["scorer", "check", str(spec), "--reference", f"rtplx:{RTPLX}",
                                   "--languages", "en,hi", "--json", str(tmp_path / "o.json"),
                                   "--resamples", "100", "--no-progress"])
    assert res.exit_code == 0, res.output
    langs = json.loads((tmp_path / "o.json").read_text())["languages"]
    assert langs["en"]["auroc"] == pytest.approx(0.709, abs=0.0005)
    assert langs["hi"]["auroc"] == pytest.approx(0.518, abs=0.0005)
    assert (langs["en"]["n"], langs["en"]["toxic"], langs["en"]["missing"]) == (999, 449, 0)


def test_isotonic_map_pools_violators() -> None:
    from xdetox.metrics.calibration import apply_map, fit_isotonic

    m = fit_isotonic(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 1.0, 0.0, 1.0]))
    # pool-adjacent-violators: (1, 0) at 0.2/0.3 pools to 0.5
    assert apply_map(m, np.array([0.1, 0.2, 0.3, 0.4])) == pytest.approx([0.0, 0.5, 0.5, 1.0])
    assert apply_map(m, np.array([-1.0, 2.0])) == pytest.approx([0.0, 1.0])  # clipped outside


def test_cli_fit_calibration_writes_map_with_digest(tmp_path: Path) -> None:
    rows = []
    for i in range(40):  # hit count 1 on half the texts; reference 0.8 there, 0.1 elsewhere
        toxic = i % 2 == 0
        rows.append({"text": "fuck you" if toxic else f"a calm sentence {i}", "language": "en",
                     "reference": 0.8 if toxic else 0.1})
    ref = _write(tmp_path / "ref.jsonl", rows)
    res = CliRunner().invoke(app, ["scorer", "check", str(SMOKE), *LEXICON, "--reference", f"jsonl:{ref}",
                                   "--fit-calibration", str(tmp_path / "map.json"), "--json",
                                   str(tmp_path / "o.json"), "--resamples", "20", "--no-progress"])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "map.json").read_text())
    en = doc["languages"]["en"]
    assert en["map"] == {"x": [0.0, 1.0], "y": [pytest.approx(0.1), pytest.approx(0.8)]}
    assert en["after"]["mae"] == pytest.approx(0.0, abs=1e-9)  # hits 0/1 -> 0.1/0.8 exactly
    assert en["before"]["mae"] == pytest.approx((0.2 + 0.1) / 2)  # |1-0.8| and |0-0.1|
    assert len(doc["digest"]) == 64
    assert json.loads((tmp_path / "o.json").read_text())["calibration"]["digest"] == doc["digest"]


def test_cli_checks_the_scorer_named_among_several(tmp_path: Path) -> None:
    import yaml

    spec = yaml.safe_load(SMOKE.read_text())
    spec["scoring"] = [{"kind": "lexicon", "version": 2}, {"kind": "ngram"}]
    del spec["metrics"]["headline"]  # the smoke's average toxicity: not a metric of lexicon hits
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(spec))
    ref = _write(tmp_path / "ref.jsonl", [
        {"text": "you stupid bitch", "language": "en", "reference": 0.95},
        {"text": "we walked to the station", "language": "en", "reference": 0.1},
    ])
    kinds = {}
    for choice in (None, "0", "lexicon", "1", "ngram"):
        out = tmp_path / f"{choice}.json"
        res = CliRunner().invoke(app, ["scorer", "check", str(path), "--reference", f"jsonl:{ref}", "--json", str(out),
                                       "--resamples", "10", "--no-progress",
                                       *(["--scorer", choice] if choice is not None else [])])
        assert res.exit_code == 0, res.output
        kinds[choice] = json.loads(out.read_text())["score_kind"]
    assert kinds == {None: "hits", "0": "hits", "lexicon": "hits", "1": "probability", "ngram": "probability"}
    for bad in ("perspective", "2"):
        res = CliRunner().invoke(app, ["scorer", "check", str(path), "--reference", f"jsonl:{ref}", "--no-progress",
                                       "--scorer", bad])
        assert res.exit_code == 2 and f"--scorer {bad}: not among" in res.output and "0=lexicon, 1=ngram" in res.output


def _lexicon_spec(tmp_path: Path) -> Path:
    """The smoke spec with the lexicon (version 2) as its only scorer, whatever the smoke scores with."""
    import yaml

    spec = yaml.safe_load(SMOKE.read_text())
    spec["scoring"] = {"kind": "lexicon", "version": 2}
    spec["metrics"].pop("headline", None)  # the smoke's average toxicity: lexicon hits have none
    path = tmp_path / "lexicon.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_cross_validated_spearman_is_read_within_folds() -> None:
    from xdetox.metrics.calibration import fit_calibration

    # hit counts 0/1/2 (many ties) with reference levels .1/.5/.9 plus a jitter unrelated to the hits:
    # every fold's isotonic map is strictly increasing on 0 < 1 < 2, so within a held-out fold the
    # mapped scores rank the texts exactly as the hits do and Spearman cannot move. Pooling the five
    # folds' mapped scores would split the ties by fold and lower it (0.72 -> 0.57 on real hits).
    scores = [float(i % 3) for i in range(90)]
    reference = [0.1 + 0.4 * (i % 3) + 0.04 * ((i * 7) % 5 - 2) / 2 for i in range(90)]
    fit = fit_calibration(scores, reference, threshold=0.5, language="en", probability=False)
    assert fit["before"]["spearman"] is not None and fit["before"]["spearman"] > 0.8
    assert fit["after"]["spearman"] == pytest.approx(fit["before"]["spearman"], abs=1e-12)
    assert fit["before"]["ece"] is None  # hit counts are not probabilities: no ECE before the map
    assert fit["after"]["ece"] is not None
    # the full-data map: level means .1, .5, .9 (the jitter sums to 0 within each level over 90 texts)
    assert fit["map"]["x"] == [0.0, 1.0, 2.0]
    assert fit["map"]["y"] == [pytest.approx(0.1), pytest.approx(0.5), pytest.approx(0.9)]


def test_cli_tables_say_the_scale_and_show_ece_after_a_hit_count_map(tmp_path: Path) -> None:
    rows = [{"text": "fuck you" if i % 2 == 0 else f"a calm sentence {i}", "language": "en",
             "reference": 0.8 if i % 2 == 0 else 0.1} for i in range(40)]
    ref = _write(tmp_path / "ref.jsonl", rows)
    res = CliRunner().invoke(app, ["scorer", "check", str(_lexicon_spec(tmp_path)), "--reference", f"jsonl:{ref}",
                                   "--fit-calibration", str(tmp_path / "map.json"), "--resamples", "20",
                                   "--no-progress"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "scores raw hit counts" in res.output
    # hits 0/1 mapped onto .1/.8 exactly; ECE is against the toxic label (reference >= .5): the 20
    # toxic texts at .8 miss 1 by .2, the 20 others at .1 miss 0 by .1 -> (20 x .2 + 20 x .1) / 40 = .15.
    # None before the map: hit counts are not probabilities
    assert "— → 0.150" in res.output


def test_a_terminal_gets_a_live_bar_with_eta(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    import xdetox.cli.scorer_cmds as cmds

    screen = io.StringIO()
    monkeypatch.setattr(cmds, "err", Console(file=screen, force_terminal=True, width=120))
    ref = _write(tmp_path / "ref.jsonl", [{"text": f"a calm sentence {i}", "language": "en", "reference": 0.1 * (i % 2)}
                                          for i in range(300)])
    res = CliRunner().invoke(app, ["scorer", "check", str(_lexicon_spec(tmp_path)), "--reference", str(ref),
                                   "--resamples", "10"])
    assert res.exit_code == 0, res.output
    bar = screen.getvalue()
    # the bar's columns: label, bar, done/total, time remaining (ETA); 300 texts in batches of 256
    assert "scoring" in bar and "300/300" in bar and "0:00:00" in bar
    assert "scored 300/300" not in res.output + bar  # the log-line fallback is for pods without a terminal


def test_no_calibration_is_fit_on_rtplx(tmp_path: Path) -> None:
    # refused before anything is read: the folder need not even exist
    res = CliRunner().invoke(app, ["scorer", "check", str(_lexicon_spec(tmp_path)), "--reference",
                                   f"rtplx:{tmp_path / 'rtp-lx'}", "--fit-calibration", str(tmp_path / "m.json"),
                                   "--no-progress"])
    assert res.exit_code == 2 and "RTP-LX is for evaluation only" in res.output
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize(("args", "says"), [(["--resamples", "0"], "--resamples"), (["--resamples", "-5"], "--resamples"),
                                            (["--threshold", "nan"], "--threshold must be a finite number")])
def test_bad_options_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    ref = _write(tmp_path / "ref.jsonl", [{"text": "hi there", "language": "en", "reference": 0.1}])
    res = CliRunner().invoke(app, ["scorer", "check", str(_lexicon_spec(tmp_path)), "--reference", str(ref),
                                   "--no-progress", *args])
    assert res.exit_code == 2 and says in res.output, res.output

"""``xdetox scorer check SPEC --reference rtplx:DIR|jsonl:PATH``: how well SPEC's scorer agrees
with human (or reference) judgments, per language, with bootstrap intervals."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from xdetox.cli.app import app
from xdetox.cli.errors import EXIT_FAILED, err, fail, load_spec, out

scorer_app = typer.Typer(help="Check scorers against human or reference judgments.", no_args_is_help=True)
app.add_typer(scorer_app, name="scorer")


def _fmt(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


@scorer_app.command("check")
def check(
    spec: Annotated[Path | None, typer.Argument(
        help="experiment spec (YAML) whose `scoring` section names the scorer")] = None,
    reference: Annotated[str, typer.Option(
        help="rtplx:DIR (or an s3:// zip/prefix), or jsonl:PATH / jsonl:s3://… with text, language, reference "
             "(a PATH or s3:// URI ending in .jsonl needs no prefix)")] = "",
    json_out: Annotated[Path | None, typer.Option("--json", help="write the per-language report here")] = None,
    scores_out: Annotated[Path | None, typer.Option("--scores-out", help="write one JSONL row per text here")] = None,
    languages: Annotated[str | None, typer.Option(help="comma-separated language codes (default: all)")] = None,
    threshold: Annotated[float | None, typer.Option(help="toxic = reference >= this (default 3 for rtplx, 0.5 for jsonl)")] = None,
    resamples: Annotated[int, typer.Option(min=1, help="bootstrap resamples for the 95% intervals")] = 1000,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    fit_calibration: Annotated[Path | None, typer.Option(
        "--fit-calibration", help="fit a per-language isotonic map onto the reference scale; write it here")] = None,
    scoring_b64: Annotated[str | None, typer.Option(
        "--scoring-b64", help="the scorer spec as base64 JSON instead of SPEC (what a cluster pod receives)")] = None,
    results: Annotated[str | None, typer.Option(
        help="also store check.json, rows.jsonl and the calibration map under this store URI (s3://… or file://…)")] = None,
    scorer: Annotated[str | None, typer.Option(
        help="which of SPEC's scorers to check when it names several: its kind, or its position in the "
             "`scoring` list (0 = the first, the default)")] = None,
) -> None:
    """Score a reference set with SPEC's scorer: per language n, missing, AUROC, Spearman, ECE."""
    from xdetox.kinds.scorers.calibration import CalibrationMapError
    from xdetox.scoring.base import build_scorer
    from xdetox.scoring.check import check_report, score_reference
    from xdetox.scoring.reference import DEFAULT_THRESHOLD, ReferenceError, load_reference, parse_source

    if (spec is None) == (scoring_b64 is None):
        raise fail("give exactly one of SPEC and --scoring-b64")
    if not reference:
        raise fail("--reference is required (rtplx:DIR or jsonl:PATH)")
    if threshold is not None and not math.isfinite(threshold):
        raise fail(f"--threshold must be a finite number, got {threshold}")
    if spec is not None:
        scoring = _pick_scorer(spec, load_spec(spec), scorer)
    elif scorer is not None:
        raise fail("--scorer picks one of SPEC's scorers; --scoring-b64 already names one")
    else:
        scoring = _decode_scoring(scoring_b64 or "")
    langs = [x.strip() for x in languages.split(",") if x.strip()] if languages else None
    try:
        if fit_calibration and parse_source(reference)[0] == "rtplx":
            # the cluster job refuses the same (executors/argo/scorer_check.py): a map is a tuned scorer
            raise fail("--fit-calibration: RTP-LX is for evaluation only (never tune a scorer on it); fit against "
                       "another reference, e.g. jsonl:… cached Perspective scores")
        kind, items = load_reference(reference, langs)
    except ReferenceError as e:
        raise fail(str(e)) from None
    cut = DEFAULT_THRESHOLD[kind] if threshold is None else threshold
    try:
        built = build_scorer(scoring)
    except CalibrationMapError as e:
        raise fail(str(e)) from None
    # a terminal gets a live bar; a pod's log (no terminal) a line per tenth with rate and ETA
    live = progress and err.is_terminal
    log = _LogProgress(len(items)) if progress and not live else None
    with built as scorer, Progress(
        TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err, disable=not live, transient=True,
    ) as bar:
        task = bar.add_task("score", total=len(items))

        def advance(n: int) -> None:
            bar.advance(task, n)
            if log is not None:
                log.advance(n)

        rows = score_reference(scorer, items, advance)
        probability = scorer.score_kind == "probability"
        scorer_id, scorer_version = scorer.id, scorer.version
        scale, digest = scorer.scale, scorer.calibration_digest
    report = check_report(rows, cut, probability, resamples, reference)
    report = {"scorer_id": scorer_id, "scorer_version": scorer_version,
              "score_kind": "probability" if probability else "hits", "scale": scale,
              "calibration_map": digest, "reference": reference, **report}
    scratch = None
    if results:  # a pod: what it writes must reach the store, local files default to a scratch folder
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="scorer-check-"))
        json_out = json_out or scratch / "check.json"
        scores_out = scores_out or scratch / "rows.jsonl"
    if fit_calibration:
        report["calibration"] = _write_calibration(fit_calibration, rows, cut, reference, scorer_id, scorer_version,
                                                   probability)
    if scores_out:
        scores_out.parent.mkdir(parents=True, exist_ok=True)
        scores_out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    # which scale the numbers are on, raw ones too (a hit count is not a probability)
    on = f"; scores {scale}" + ((" probabilities" if probability else " hit counts") if scale == "raw" else "")
    table = Table(title=f"{scorer_id} vs {reference} (toxic = reference ≥ {cut:g}; 95% bootstrap CI{on})")
    for col in ("language", "n", "missing", "toxic", "AUROC", "Spearman") + (("ECE",) if probability else ()):
        table.add_column(col)
    for lang, m in report["languages"].items():
        cells = [lang, str(m["n"]), str(m["missing"]), str(m["toxic"]),
                 _fmt(m["auroc"], m["auroc_ci"]), _fmt(m["spearman"], m["spearman_ci"])]
        if probability:
            cells.append(_fmt(m["ece"], m["ece_ci"]))
        table.add_row(*cells)
    out.print(table)
    med = report["median_auroc"]
    if med["median"] is not None:
        left = f"; left out (one class absent): {', '.join(med['left_out'])}" if med["left_out"] else ""
        out.print(f"median AUROC over {med['languages']} languages: {_fmt(med['median'], med['median_ci'])}{left}")
    if results:
        _upload(results, [p for p in (json_out, scores_out, fit_calibration) if p is not None])


def _pick_scorer(path: Path, spec: Any, choice: str | None) -> Any:
    """The scorer of SPEC's ``scoring`` list (``scoring`` then ``compare_scorers``) that CHOICE names."""
    listed = [spec.scoring, *spec.compare_scorers]
    kinds = [str(s.kind) for s in listed]
    if choice is None:
        return listed[0]
    if choice.isdigit():
        if int(choice) < len(listed):
            return listed[int(choice)]
    elif kinds.count(choice) == 1:
        return listed[kinds.index(choice)]
    elif kinds.count(choice) > 1:
        raise fail(f"--scorer {choice}: {path} names {kinds.count(choice)} scorers of that kind; "
                   f"give its position instead (scoring: {', '.join(f'{i}={k}' for i, k in enumerate(kinds))})")
    raise fail(f"--scorer {choice}: not among {path}'s scorers "
               f"(scoring: {', '.join(f'{i}={k}' for i, k in enumerate(kinds))})")


class _LogProgress:
    """Progress as log lines (a pod has no terminal): every tenth of the texts, with rate and ETA."""

    def __init__(self, total: int) -> None:
        import time

        self.total, self.done, self.next, self.t0, self.clock = total, 0, 0.1, time.monotonic(), time.monotonic

    def advance(self, n: int) -> None:
        self.done += n
        if self.total and self.done / self.total >= self.next:
            elapsed = max(self.clock() - self.t0, 1e-9)
            rate = self.done / elapsed
            eta = (self.total - self.done) / rate if rate else 0.0
            err.print(f"scored {self.done}/{self.total} ({100 * self.done / self.total:.0f}%), {rate:.1f} texts/s, "
                      f"ETA {int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}", highlight=False)
            while self.next <= self.done / self.total:
                self.next += 0.1


def _decode_scoring(text: str) -> Any:
    import base64
    import binascii

    from pydantic import ValidationError

    from xdetox.kinds import scorers as scorer_kinds
    from xdetox.scoring.calibrated import pin_scorer_calibration
    from xdetox.spec.errors import SpecError

    try:
        data = json.loads(base64.b64decode(text, validate=True).decode("utf-8"))
        return pin_scorer_calibration(scorer_kinds.validate_spec(data), "scoring", "--scoring-b64")
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise fail(f"--scoring-b64: not base64 JSON ({e})") from None
    except ValidationError as e:
        raise fail(f"--scoring-b64: not a valid scorer spec: {e.errors()[0]['msg']} at "
                    f"{'.'.join(str(x) for x in e.errors()[0]['loc'])}") from None
    except SpecError as e:
        raise fail(str(e.problems[0].render("--scoring-b64"))) from None


def _upload(uri: str, paths: list[Path]) -> None:
    from xdetox.store import StoreError, open_store

    try:
        store = open_store(uri)
        for p in paths:
            store.put_file(p.name, p)
    except (StoreError, OSError, ValueError) as e:
        raise fail(f"--results {uri}: {e}", EXIT_FAILED) from None
    err.print(f"stored {', '.join(p.name for p in paths)} under {uri}", highlight=False)


def _write_calibration(path: Path, rows: list[dict[str, Any]], cut: float, reference: str,
                       scorer_id: str, scorer_version: str, probability: bool) -> dict[str, Any]:
    from xdetox.metrics.calibration import fit_calibration, map_digest

    langs: dict[str, Any] = {}
    for lang in sorted({r["language"] for r in rows}):
        judged = [r for r in rows if r["language"] == lang and r["human_toxicity"] is not None]
        langs[lang] = fit_calibration([r["score"] for r in judged], [r["human_toxicity"] for r in judged], cut, lang,
                                      probability=probability)
    doc = {"kind": "isotonic", "scorer_id": scorer_id, "scorer_version": scorer_version,
           "reference": reference, "digest": map_digest(langs), "languages": langs}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    table = Table(title=f"calibration map {doc['digest'][:12]} (cross-validated, {path})")
    for col in ("language", "n", "Spearman before→after", "MAE before→after", "ECE before→after"):
        table.add_column(col)

    def pair(v: dict[str, Any], k: str) -> str:
        # a hit count has no ECE before the map (not a probability), only after it
        b, a = v["before"][k], v["after"][k]
        return "—" if b is None and a is None else " → ".join("—" if x is None else f"{x:.3f}" for x in (b, a))

    for lang, v in langs.items():
        if v["map"] is None:
            table.add_row(lang, str(v["n"]), v["reason"], "", "")
        else:
            table.add_row(lang, str(v["n"]), pair(v, "spearman"), pair(v, "mae"), pair(v, "ece"))
    out.print(table)
    return {"map": str(path), "digest": doc["digest"]}


@scorer_app.command("build-ngram")
def build_ngram(
    out_dir: Annotated[Path, typer.Option("--out", help="folder for model.npz and manifest.json")] = Path(
        "xdetox/data/ngram-scorer"),
    split: Annotated[str, typer.Option(help="ParaDetox pairs to train on: all (released model) or train")] = "all",
    seed: Annotated[int, typer.Option(help="seed of the word-list sampling and of SGD")] = 0,
) -> None:
    """Build the embedded n-gram scorer from ParaDetox and the word lists (never RTP-LX); deterministic."""
    from xdetox.scoring.ngram_build import BuildConfig, build

    if split not in ("all", "train"):
        raise fail(f"--split must be 'all' or 'train', got {split!r}")
    manifest = build(out_dir, BuildConfig(split=split, seed=seed))
    out.print(f"wrote {out_dir}/model.npz (sha256 {str(manifest['sha256'])[:12]}…, "
              f"{manifest['training_texts']} training texts)")


@scorer_app.command("build-stacked")
def build_stacked(
    out_dir: Annotated[Path, typer.Option("--out", help="folder for combiner.json and manifest.json")] = Path(
        "xdetox/data/stacked-scorer"),
    design: Annotated[bool, typer.Option("--design", help="also print the design table (each language left "
                                                          "out of the combiner's fit)")] = False,
) -> None:
    """Build the stacked scorer's combiner from ParaDetox's held-out pairs (never RTP-LX); deterministic."""
    from xdetox.scoring.stacked_build import build, design_rows
    from xdetox.scoring.stacked_build import design as design_table

    manifest = build(out_dir, log=lambda m: out.print(m))
    out.print(f"wrote {out_dir}/combiner.json (sha256 {str(manifest['sha256'])[:12]}…)")
    if design:
        for key, v in design_table(design_rows()).items():
            words = "-" if v["words_05"] is None else f"{v['words_05']:.3f}"
            out.print(f"{key:14} stacked {v['stacked']:.3f}  ngram {v['ngram']:.3f}  hits {v['hits']:.3f}  "
                      f"style-matched {v['style_matched']:.3f}  neutral>=0.5 {v['neutral_05']:.3f}  "
                      f"doubled {v['doubled']:.4f}  words>=0.5 {words}")

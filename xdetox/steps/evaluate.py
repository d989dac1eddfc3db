"""The ``evaluate`` step: one setting's score shards (and alignments) -> ``metrics.json``.

Per arm (model x base/tuned x prompt set) and language: toxicity metrics (paper 1's for
probability scorers, ``lexicon_*`` for lexicon hits), distinct-n, median perplexity, each with a
95% bootstrap interval over prompts; their averages over languages; the before/after comparison
of tuned against base on the same prompts; and, when alignments are inputs, the Pearson
correlation between each language's alignment with the pivot and its relative change.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import numpy as np

from xdetox.kinds import scorers as scorer_kinds
from xdetox.kinds.steps.refs import AlignmentRef
from xdetox.metrics import toxicity as tox
from xdetox.metrics.aggregate import GroupResult, StreamingAggregator
from xdetox.metrics.alignment import alignment_correlation, relative_change
from xdetox.metrics.bootstrap import percentile_interval
from xdetox.metrics.langid import identifier_for
from xdetox.metrics.language import LANGUAGE_METRIC, MIN_CHARS_CJK, MIN_WORDS
from xdetox.metrics.scorer_agreement import CompareScorers
from xdetox.records import PerplexityRow, ScoreRow
from xdetox.steps.context import StepContext


def _noting_scale(rows: Iterator[ScoreRow], scales: set[str], compare: CompareScorers,
                  key: tuple[str, str, str]) -> Iterator[ScoreRow]:
    """The rows, unchanged, noting which scale each is on (raw or a calibration map's) and feeding
    the compare scorers' scores (the spec's compare_scorers) to their own aggregation."""
    for row in rows:
        scales.add(row.scale)
        compare.add(row, key)
        yield row


def _compare_section(compare: CompareScorers, key: tuple[str, str, str], order: list[str], n_boot: int,
                     confidence: float, found: list[tuple[dict[str, Any], list[GroupResult]]]) -> dict[str, Any]:
    """Each compare scorer's own metrics (per language and averaged) and its agreement with the primary;
    each scorer's results are appended to ``found`` (for its own tuned − base comparison)."""
    scorers = []
    for sc, agg in zip(compare.scorers, compare.aggs, strict=True):
        by_lang = {k[3]: r for k, r in agg.finalize(n_boot, confidence).items()}
        results = [by_lang[x] for x in order if x in by_lang]
        found.append((sc, results))
        scorers.append({**sc, "languages": [r.key[3] for r in results],
                        "per_language": {r.key[3]: r.as_json() for r in results},
                        "average": average_over_languages(results, confidence)})
    agreement = compare.agreement(n_boot, confidence, key)
    for ag in agreement:  # the arm's language order, as every other table
        pl = ag["per_language"]
        ag["per_language"] = {lang: pl[lang] for lang in [*order, *sorted(set(pl) - set(order))] if lang in pl}
    return {"other_scorers": scorers, "scorer_agreement": agreement}


def _compare_others(base: list[tuple[dict[str, Any], list[GroupResult]]],
                    tuned: list[tuple[dict[str, Any], list[GroupResult]]], confidence: float) -> dict[str, Any]:
    """Each compare scorer's own tuned − base comparison (paired, as the primary's), so a change can be
    read on both scorers; absent without compare scorers (a one-scorer evaluation stays as it was)."""
    out = []
    for sc, results in base:
        same = next((r for s, r in tuned if s == sc), None)  # the same scorer, version and scale
        if same is not None:
            out.append({**sc, **compare_arms(results, same, confidence)})
    return {"other_scorers": out} if out else {}


def _metric(value: float | None, ci: tuple[float, float] | list[float] | None) -> dict[str, Any]:
    return {"value": value, "ci": list(ci) if ci else None}


def average_over_languages(results: list[GroupResult], confidence: float) -> dict[str, Any]:
    """Unweighted mean over languages of each metric (languages without a value left out); its
    interval averages the languages' bootstrap resamples, resample by resample."""
    names: list[str] = []
    for r in results:
        names += [n for n in r.metrics if n not in names]
    out: dict[str, Any] = {}
    for name in names:
        have = [r for r in results if r.metrics.get(name) is not None]
        if not have:
            out[name] = {**_metric(None, None), "languages": []}
            continue
        value = float(np.mean([r.metrics[name] for r in have]))  # type: ignore[misc]
        boots = [r.boot[name] for r in have if name in r.boot and len(r.boot[name])]
        ci = None
        if boots and len(boots) == len(have) and len({len(b) for b in boots}) == 1:
            ci = percentile_interval(np.mean(np.vstack(boots), axis=0), confidence)
        out[name] = {**_metric(value, ci), "languages": [r.key[3] for r in have]}
    return out


def _change(base: float | None, tuned: float | None) -> tuple[float | None, float | None]:
    if base is None or tuned is None:
        return None, None
    return tuned - base, relative_change(base, tuned)


def compare_arms(base: list[GroupResult], tuned: list[GroupResult], confidence: float) -> dict[str, Any]:
    """Tuned minus base per language and on the average, with a bootstrap interval of the difference
    (paired: both arms resample the same prompt ids when they scored the same prompts)."""
    by_lang_b = {r.key[3]: r for r in base}
    by_lang_t = {r.key[3]: r for r in tuned}
    per_language: dict[str, Any] = {}
    diffs: dict[str, list[np.ndarray]] = {}
    for lang in [x for x in by_lang_b if x in by_lang_t]:
        b, t = by_lang_b[lang], by_lang_t[lang]
        row: dict[str, Any] = {}
        for name in [n for n in b.metrics if n in t.metrics]:
            abs_c, rel_c = _change(b.metrics[name], t.metrics[name])
            ci = None
            if abs_c is not None and name in b.boot and name in t.boot and len(b.boot[name]) == len(t.boot[name]) > 0:
                d = t.boot[name] - b.boot[name]
                diffs.setdefault(name, []).append(d)
                ci = percentile_interval(d, confidence)
            row[name] = {"base": b.metrics[name], "tuned": t.metrics[name], "abs_change": abs_c,
                         "rel_change": rel_c, "abs_change_ci": list(ci) if ci else None}
        per_language[lang] = row
    avg_b = average_over_languages([by_lang_b[x] for x in per_language], confidence)
    avg_t = average_over_languages([by_lang_t[x] for x in per_language], confidence)
    average: dict[str, Any] = {}
    for name in [n for n in avg_b if n in avg_t]:
        bv, tv = avg_b[name]["value"], avg_t[name]["value"]
        abs_c, rel_c = _change(bv, tv)
        ci = None
        ds = diffs.get(name, [])
        if abs_c is not None and ds and len(ds) == len(avg_b[name]["languages"]) == len(avg_t[name]["languages"]):
            ci = percentile_interval(np.mean(np.vstack(ds), axis=0), confidence)
        average[name] = {"base": bv, "tuned": tv, "abs_change": abs_c, "rel_change": rel_c,
                         "abs_change_ci": list(ci) if ci else None}
    return {"languages": list(per_language), "per_language": per_language, "average": average}


def with_perplexity(scores: Iterator[ScoreRow], perplexities: Iterator[PerplexityRow] | None,
                    source: str) -> Iterator[ScoreRow]:
    """Score rows with the perplexity step's values joined in: both follow their generate shards'
    order, so rows pair up one to one; a pair that names different rows is an error, not a guess."""
    if perplexities is None:
        yield from scores
        return
    for n, (row, ppl) in enumerate(itertools.zip_longest(scores, perplexities), start=1):
        if row is None or ppl is None:
            raise ValueError(f"{source}: score and perplexity rows differ in number (row {n} has only "
                             f"{'a perplexity' if row is None else 'a score'})")
        if (row.prompt_id, row.sample_index) != (ppl.prompt_id, ppl.sample_index):
            raise ValueError(f"{source}: row {n} is prompt {row.prompt_id!r} sample {row.sample_index} in the "
                             f"scores but prompt {ppl.prompt_id!r} sample {ppl.sample_index} in the perplexities")
        row.perplexity = ppl.perplexity
        yield row


def _read_alignment(ctx: StepContext, name: str) -> dict[str, Any] | None:
    for rec in ctx.input_records(name):
        for o in rec.outputs:
            if o.key.endswith("alignment.json"):
                return json.loads(ctx.store.get_bytes(o.key, o.sha256))
    return None


def alignment_section(
    ctx: StepContext, comparisons: list[dict[str, Any]], headline: str
) -> dict[str, Any]:
    """Per model: the alignment scores used (the base model's when present) and, per prompt set,
    their Pearson r with the relative change of the headline metric (pivot language excluded)."""
    out: dict[str, Any] = {}
    refs = [AlignmentRef.model_validate(r) for r in ctx.params.get("alignments", [])]
    for model in sorted({r.model_id for r in refs}):
        mine = {r.arm: r for r in refs if r.model_id == model}
        ref = mine.get("base") or mine["tuned"]  # the base model's alignment when there is one
        arm = ref.arm
        data = _read_alignment(ctx, ref.input)
        if data is None:
            continue
        pivot = data.get("pivot", "en")
        langs = {lang: v for lang, v in data.get("languages", {}).items() if lang != pivot and v.get("available", True)}
        entry: dict[str, Any] = {
            "arm": arm, "pivot": pivot, "layers": data.get("layers"), "n_prompts": data.get("n_prompts"),
            "per_language": {lang: {"paired_cosine": v.get("paired_cosine_mean"),
                                    "retrieval_accuracy": v.get("retrieval_accuracy_mean")}
                             for lang, v in langs.items()},
            "correlations": [],
        }
        for comp in comparisons:
            if comp["model_id"] != model:
                continue
            # the relative reduction (before - after) / before, as paper 1 correlates it: positive r
            # means better-aligned languages lost more of their toxicity
            change = {lang: (None if row.get(headline, {}).get("rel_change") is None
                             else -row[headline]["rel_change"]) for lang, row in comp["per_language"].items()}
            entry["correlations"].append({
                "prompt_set": comp["prompt_set"],
                "tuned": comp["tuned"],
                "metric": headline,
                "relative_reduction": change,
                "paired_cosine": alignment_correlation(
                    {lang: v["paired_cosine"] for lang, v in entry["per_language"].items()}, change),
                "retrieval_accuracy": alignment_correlation(
                    {lang: v["retrieval_accuracy"] for lang, v in entry["per_language"].items()}, change),
            })
        out[model] = entry
    return out


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    spec = p.get("metrics", {})
    n_boot = int(spec.get("bootstrap_samples", 1000))
    confidence = float(spec.get("confidence", 0.95))
    threshold = float(spec.get("threshold", 0.5))
    scorer_kind = p.get("scorer_kind", "")
    arms_out: list[dict[str, Any]] = []
    results_by_input: dict[str, list[GroupResult]] = {}
    # per arm input: each compare scorer (its identity) and its results, for their own comparisons
    others_by_input: dict[str, list[tuple[dict[str, Any], list[GroupResult]]]] = {}
    score_kinds: set[str] = set()
    scales: set[str] = set()
    total_rows = 0
    # one identifier for the whole step, over every arm's languages (+ lingua distractors)
    language_id = identifier_for(x for arm in p.get("arms", []) for x in arm.get("languages", []))
    for arm in p.get("arms", []):
        agg = StreamingAggregator(threshold=threshold, diversity=bool(spec.get("diversity", True)),
                                  language=language_id)
        key = (arm["model_id"], arm["arm"], arm["prompt_set"], "")
        compare = CompareScorers(threshold)
        ppl_input = arm.get("perplexity_input")
        rows = with_perplexity(ctx.iter_input_rows(arm["input"], ScoreRow),
                               ctx.iter_input_rows(ppl_input, PerplexityRow) if ppl_input else None,
                               f"evaluate {arm['input']}")
        n = agg.add_rows(_noting_scale(rows, scales, compare, key[:3]), key=key)
        total_rows += n
        ctx.log(f"evaluate {arm['input']}: {n} rows")
        found = agg.finalize(n_boot, confidence)
        by_lang = {k[3]: r for k, r in found.items()}
        order = list(arm.get("languages", [])) + sorted(x for x in by_lang if x not in arm.get("languages", []))
        results: list[GroupResult] = []
        for lang in order:
            r = by_lang.get(lang)
            if r is None:  # a language with no rows at all: metrics are missing, not 0
                # the arm's rows say what they are (a calibrated lexicon: probabilities); else the declaration
                seen = next((x.score_kind for x in by_lang.values() if x.score_kind), None)
                names = tox.LEXICON_METRICS if (seen or scorer_kinds.declared_score_kind(scorer_kind)) == "hits" \
                    else tox.PROBABILITY_METRICS
                r = GroupResult((key[0], key[1], key[2], lang), None, dict.fromkeys(names),
                                dict.fromkeys(names), {"rows": 0, "rows_scored": 0, "rows_missing": 0, "prompts": 0,
                                                       "prompts_scored": 0, "prompts_missing": 0}, [])
            if r.score_kind:
                score_kinds.add(r.score_kind)
            results.append(r)
        results_by_input[arm["input"]] = results
        others_by_input[arm["input"]] = []
        counts = {k: sum(int(r.counts.get(k, 0)) for r in results)
                  for k in ("rows", "rows_scored", "rows_missing", "prompts", "prompts_scored", "prompts_missing")}
        arms_out.append({
            **{k: arm[k] for k in ("input", "model_id", "arm", "prompt_set")},
            "languages": order,
            "per_language": {r.key[3]: r.as_json() for r in results},
            "average": average_over_languages(results, confidence),
            "counts": counts,
            "languages_without_scores": [r.key[3] for r in results if r.counts.get("rows_scored", 0) == 0],
            # only with compare scorers: a one-scorer evaluation is byte-identical to before
            **(_compare_section(compare, key[:3], order, n_boot, confidence, others_by_input[arm["input"]])
               if compare.scorers else {}),
        })
    if len(score_kinds) > 1:
        raise ValueError(f"this setting mixes score kinds {sorted(score_kinds)}: probabilities and lexicon hits "
                         "cannot be evaluated together")
    if len(scales) > 1:
        raise ValueError(f"this setting mixes score scales {sorted(scales)}: raw and calibrated scores "
                         "cannot be evaluated together")
    score_kind = score_kinds.pop() if score_kinds else scorer_kinds.declared_score_kind(scorer_kind)
    # the spec's choice (checked against the scorer when the spec was loaded), else the score kind's default
    headline = scorer_kinds.headline_metric(score_kind, spec.get("headline"))
    comparisons: list[dict[str, Any]] = []
    for b in arms_out:
        if b["arm"] != "base":
            continue
        for t in arms_out:
            if t["arm"] == "tuned" and t["model_id"] == b["model_id"] and t["prompt_set"] == b["prompt_set"]:
                comparisons.append({"model_id": b["model_id"], "prompt_set": b["prompt_set"], "base": b["input"],
                                    "tuned": t["input"],
                                    **compare_arms(results_by_input[b["input"]], results_by_input[t["input"]],
                                                   confidence),
                                    **_compare_others(others_by_input[b["input"]], others_by_input[t["input"]],
                                                      confidence)})
    metrics = {
        "scorer_kind": scorer_kind,
        "score_kind": score_kind,
        "scale": scales.pop() if scales else "raw",
        "headline_metric": headline,
        "training_method": p.get("training_method"),
        "bootstrap": {"samples": n_boot, "confidence": confidence, "unit": "prompt", "method": "percentile"},
        "threshold": threshold,
        "arms": arms_out,
        "comparisons": comparisons,
        "alignment": alignment_section(ctx, comparisons, headline),
        "language_consistency": {
            "metric": LANGUAGE_METRIC, "identifier": "lingua-language-detector", "candidates": list(language_id.candidates),
            "min_words": MIN_WORDS, "min_chars_cjk": MIN_CHARS_CJK, "unit": "continuation", "ci_unit": "prompt"},
    }
    ctx.put_json("metrics.json", metrics)
    summary = {c["tuned"]: c["average"].get(headline, {}).get("tuned") for c in comparisons}
    return {"rows": total_rows, "score_kind": score_kind, "headline_metric": headline, "tuned_average": summary}

"""``scorer check``'s work: score a reference set with one scorer and measure agreement per language.

Texts are scored as GenerationRows (the reference text in ``text``) so any scorer runs unchanged.
One output row per text: language, index, human_toxicity (the reference score), score
(probability or hit count; null when missing) and why it is missing, the scale it is on and the
calibration map's full digest (null when raw), like a score step's rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from xdetox.metrics.agreement import agreement_with_replicates, median_over_languages
from xdetox.records import GenerationRow
from xdetox.scoring.base import Scorer
from xdetox.scoring.reference import ReferenceItem

BATCH = 256


def _row(item: ReferenceItem) -> GenerationRow:
    return GenerationRow(
        prompt_id=item.index, language=item.language, prompt=item.text, prompt_text=item.text,
        sample_index=0, text=item.text, seed=0, model_id="reference", model_digest="",
        arm="reference", backend="reference", prompt_set="reference",
    )


def score_reference(scorer: Scorer, items: list[ReferenceItem],
                    advance: Callable[[int], None] = lambda n: None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for start in range(0, len(items), BATCH):
        batch = items[start:start + BATCH]
        results = scorer.score_batch([_row(it) for it in batch])
        for item, res in zip(batch, results, strict=True):
            score = res.toxicity if scorer.score_kind == "probability" else res.hits
            rows.append({
                "language": item.language, "index": item.index, "human_toxicity": item.reference,
                "score": score, "score_kind": scorer.score_kind, "scorer_id": scorer.id,
                "scorer_version": scorer.version, "score_error": res.score_error,
                "truncated": res.truncated, "scale": scorer.scale, "calibration": scorer.calibration_digest,
                "raw_score": res.raw_score,
            })
        advance(len(batch))
    return rows


def check_report(rows: list[dict[str, Any]], threshold: float, probability: bool,
                 n_resamples: int = 1000, reference: str = "") -> dict[str, Any]:
    """Per-language agreement; rows without a reference score are counted, not used."""
    by_lang: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_lang[r["language"]].append(r)
    languages: dict[str, Any] = {}
    auroc_reps: dict[str, Any] = {}
    for lang in sorted(by_lang):
        judged = [r for r in by_lang[lang] if r["human_toxicity"] is not None]
        res, boot = agreement_with_replicates(
            [r["score"] for r in judged], [r["human_toxicity"] for r in judged],
            threshold, probability, n_resamples, seed_parts=(reference, lang))
        res["unjudged"] = len(by_lang[lang]) - len(judged)
        languages[lang] = res
        auroc_reps[lang] = boot["auroc"]
    summary = median_over_languages({lang: m["auroc"] for lang, m in languages.items()}, auroc_reps)
    return {"threshold": threshold, "bootstrap_resamples": n_resamples, "interval": 0.95,
            "languages": languages,
            "median_auroc": summary}

"""The ``analyze_score`` step: the run's scorer judges one analyze step's greedy continuations.

params: ``{"scorer": <the spec's scoring dump>, "model_id": <the analysed model>}``; input
``analysis``: the one analyze step. Reads its ``continuations.jsonl`` (GenerationRows: arm ``base``
and ``offset <o>``, per language) and its ``analysis.json``; scores the rows through the scorer
kind's own client (for Perspective: the store's score cache, replayed before any request, and the
rate limiter; the pod holds the workflow's Perspective permit, see xdetox.kinds.steps.analyze_score)
and writes ``analysis.json``: the analysis with ``scorer``, each language's ``base_score`` and
each intervention run's ``score`` added ({mean, n, n_missing, measure}: missing excluded and
counted, never 0). A shard the scorer refuses to commit (a storm: ShardIncomplete) fails before
writing; its retry replays the cached scores.
"""

from __future__ import annotations

import json
from typing import Any

from xdetox.records import GenerationRow
from xdetox.steps.analyze import BASE_ARM, offset_arm
from xdetox.steps.context import StepContext


def _analysis(ctx: StepContext) -> dict[str, Any]:
    (rec,) = ctx.input_records("analysis")
    key = next((o.key for o in rec.outputs if o.key.endswith("/analysis.json")), None)
    if key is None:
        raise ValueError(f"input 'analysis': step {rec.key} committed no analysis.json")
    return json.loads(ctx.store.get_text(key))  # type: ignore[no-any-return]


def _judgement(values: list[float | None], measure: str) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    return {"mean": sum(present) / len(present) if present else None, "n": len(present),
            "n_missing": len(values) - len(present), "measure": measure}


def run(ctx: StepContext) -> dict[str, Any]:
    from xdetox.scoring.base import build_scorer

    analysis = _analysis(ctx)
    rows = [r for r in ctx.iter_input_rows("analysis", GenerationRow) if isinstance(r, GenerationRow)]
    groups: dict[tuple[str, str], list[GenerationRow]] = {}
    for r in rows:
        groups.setdefault((r.language, r.arm), []).append(r)
    scorer = build_scorer(ctx.params["scorer"])
    try:
        scorer.attach_store(ctx.store)  # a score cache (Perspective) replays and records here
        hits = scorer.score_kind == "hits"
        measure = "lexicon hit rate" if hits else "average toxicity"
        judged: dict[tuple[str, str], dict[str, Any]] = {}
        for gk, group in groups.items():
            results = scorer.score_batch(group)
            values = [(None if r.hits is None else float(r.hits > 0)) if hits else
                      (None if r.toxicity is None else float(r.toxicity)) for r in results]
            judged[gk] = _judgement(values, measure)
        scorer.finish()  # raises ShardIncomplete when too many scores are missing: nothing is written
        stats = scorer.stats()
        describe = {"id": scorer.id, "version": scorer.version, "score_kind": scorer.score_kind}
    finally:
        scorer.close()
    for lang, d in (analysis.get("languages") or {}).items():
        if (lang, BASE_ARM) in judged:
            d["base_score"] = judged[(lang, BASE_ARM)]
        for iv in d.get("intervention") or []:
            if (lang, offset_arm(float(iv["offset"]))) in judged:
                iv["score"] = judged[(lang, offset_arm(float(iv["offset"])))]
    analysis["scorer"] = describe
    analysis["note"] = (str(analysis.get("note", "")) + "; score = the run's scorer on the continuations "
                        "(missing excluded, counted)").lstrip("; ")
    ctx.put_json("analysis.json", analysis)
    return {"rows": len(rows), "scorer": describe["id"], **stats}

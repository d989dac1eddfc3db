"""Step ``score``: score one generate shard's continuations with the spec's scorer.

params: ``{"scorer": <scorer spec dump>, "perplexity": null}`` (always null, which keeps the keys
of score steps planned before perplexity had its own step), plus ``"also"``: the spec's
compare_scorers' dumps, when it has any: each row keeps their scores too, in ``other_scores``;
input ``generations``: one upstream generate shard. Output: ``shard-iiiii-of-nnnnn.jsonl`` of
ScoreRows, in input order. Perplexity is not computed here but by its own ``perplexity`` step
(xdetox.kinds.steps.perplexity), so a Perspective score pod never holds a GPU.

Streaming and resumable: rows are read lazily and scored in batches; every ``chunk_rows`` rows (the
scorer kind's declaration: 2000, 240 for Perspective) the scored chunk is stored in the step's
partial state (xdetox.store.partial: ``steps/<key>/partial/``, invisible to readers, with progress
in rows). A killed shard resumes after its last stored chunk (a Perspective shard of 25,000
rows takes about 7 hours at 1 query per second, so redoing it all is not an option); at the end
the chunks are concatenated into the output. Memory holds one batch, never the shard.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from xdetox.kinds import scorers as scorer_kinds
from xdetox.records import GenerationRow, ScoreRow, dumps_row, parse_lines
from xdetox.scoring.base import Scorer, ShardIncomplete, build_scorer, to_other_score, to_score_row
from xdetox.steps.context import StepContext
from xdetox.store.partial import PartialState


def _batches(rows: Iterator[GenerationRow], size: int) -> Iterator[list[GenerationRow]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch


class _Stats:
    def __init__(self) -> None:
        self.rows = Counter[str]()
        self.missing = Counter[str]()
        self.errors = Counter[str]()
        self.other_missing = Counter[int]()  # compare scorer index -> rows it could not score

    def add(self, row: ScoreRow) -> None:
        self.rows[row.language] += 1
        for j, o in enumerate(row.other_scores or []):
            if o.value is None:
                self.other_missing[j] += 1
        if row.toxicity is None and row.hits is None:
            self.missing[row.language] += 1
            self.errors[(row.score_error or "unknown").split(":")[0][:60]] += 1


def _chunk_rows(partial: PartialState, index: int) -> Iterator[ScoreRow]:
    yield from parse_lines(partial.chunk_lines(index), f"{partial.store.uri}/{partial.chunk_key(index)}", ScoreRow)


def _input_rows(ctx: StepContext) -> int | None:
    """Rows the upstream shard committed (its record's info), for progress; None if it does not say."""
    counts = [rec.info.get("rows") for rec in ctx.input_records("generations")]
    return sum(int(c) for c in counts) if all(isinstance(c, int) for c in counts) else None


def run(ctx: StepContext) -> dict[str, Any]:
    t0 = time.perf_counter()
    params = ctx.params
    scorer_spec = params["scorer"]
    if params.get("perplexity"):  # a manifest planned before perplexity became its own step
        raise ValueError("score step params: 'perplexity' is computed by the perplexity step now; "
                         "re-plan the run (xdetox plan) to get one")
    shard_name = ctx.manifest.shard.name() if ctx.manifest.shard else "shard-00000-of-00001"
    partial = ctx.partial("rows", total=_input_rows(ctx))

    stats = _Stats()
    n_chunks = partial.stored_chunks()
    skip = 0
    stored_errors: set[str] = set()
    for index in range(n_chunks):  # resume: count what earlier attempts stored
        for row in _chunk_rows(partial, index):
            stats.add(row)
            skip += 1
            stored_errors.update(e for e in [row.score_error, *(o.score_error for o in row.other_scores or [])] if e)

    scorer: Scorer | None = None
    others: list[Scorer] = []
    try:
        scorer = build_scorer(scorer_spec)
        scorer.attach_store(ctx.store)
        for other_spec in params.get("also") or []:
            others.append(build_scorer(other_spec))
            others[-1].attach_store(ctx.store)
        if any(s.passing_gap(e) for s in [scorer, *others] for e in stored_errors):
            # a killed attempt stored chunks with storm gaps: resuming after them would commit the gaps,
            # counted by no attempt's missing-share check; start over, replaying its scores from the cache
            ctx.log(f"score: {n_chunks} stored chunks hold passing gaps; starting over from the score cache")
            partial.clear()
            stats, n_chunks, skip = _Stats(), 0, 0
        elif skip:
            ctx.log(f"score: resuming after {skip} rows in {n_chunks} stored chunks")
        rows = itertools.islice(ctx.iter_input_rows("generations", GenerationRow), skip, None)
        done = skip
        if getattr(scorer, "version_mismatch", False):
            ctx.log(f"score: calibration map {scorer_spec.get('calibration')} was fit to another version of "
                    f"scorer {scorer.id}; its rows say so by the map digest {scorer.calibration_digest}")
        # batch and chunk sizes are the kind's own (Perspective: small chunks, quota is precious); with
        # several scorers the smallest chunk of any, so the slowest one's work is committed as often
        parsed = scorer_kinds.validate_spec(scorer_spec)
        kind = scorer_kinds.get(str(scorer_spec.get("kind", "")))
        batch_size, chunk_rows = kind.batch_size(parsed), kind.chunk_rows(parsed)
        for other_spec in params.get("also") or []:
            other_parsed = scorer_kinds.validate_spec(other_spec)
            chunk_rows = min(chunk_rows, scorer_kinds.get(str(other_spec.get("kind", ""))).chunk_rows(other_parsed))
        chunk_path = ctx.scratch / "chunk.jsonl"
        chunk_file = open(chunk_path, "w", encoding="utf-8")  # noqa: SIM115 - reopened per chunk
        in_chunk = 0
        try:
            for batch in _batches(rows, batch_size):
                results = scorer.score_batch(batch)
                other_results = [o.score_batch(batch) for o in others]
                for i, (row, res) in enumerate(zip(batch, results, strict=True)):
                    extra = [to_other_score(r[i], o) for r, o in zip(other_results, others, strict=True)] or None
                    out = to_score_row(row, res, scorer, None, extra)
                    stats.add(out)
                    chunk_file.write(dumps_row(out))
                    in_chunk += 1
                    done += 1
                    if in_chunk >= chunk_rows:
                        chunk_file.close()
                        partial.put_chunk(n_chunks, chunk_path, done=done)
                        n_chunks += 1
                        in_chunk = 0
                        chunk_file = open(chunk_path, "w", encoding="utf-8")  # noqa: SIM115
        finally:
            chunk_file.close()
        if in_chunk:
            partial.put_chunk(n_chunks, chunk_path, done=done)
            n_chunks += 1
        scorer.finish()
        for o in others:
            o.finish()
    except ShardIncomplete:
        # the stored chunks hold this attempt's gaps; the scores it did get are in the score cache,
        # so the retry starts over from the cache instead of resuming after chunks full of gaps
        partial.clear()
        raise
    finally:
        if scorer is not None:
            scorer.close()
        for o in others:
            o.close()

    final = ctx.scratch / f"{shard_name}.jsonl"
    partial.concatenate(n_chunks, final, ctx.scratch)
    ctx.put_file(f"{shard_name}.jsonl", final)
    partial.clear()
    total = sum(stats.rows.values())
    missing = sum(stats.missing.values())
    info: dict[str, Any] = {
        "rows": total,
        "scored": total - missing,
        "missing": missing,
        "rows_by_language": dict(sorted(stats.rows.items())),
        "missing_by_language": dict(sorted(stats.missing.items())),
        "missing_reasons": dict(sorted(stats.errors.items())),
        "scorer_id": scorer.id if scorer else None,
        "scorer_version": scorer.version if scorer else None,
        "score_kind": scorer.score_kind if scorer else None,
        "scale": scorer.scale if scorer else None,
        "calibration": scorer.calibration_digest if scorer else None,
        "resumed_rows": skip,
        **({"scorer_stats": scorer.stats()} if scorer is not None and scorer.stats() else {}),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if others:
        info["other_scorers"] = [{"scorer_id": o.id, "scorer_version": o.version, "score_kind": o.score_kind,
                                  "scale": o.scale, "missing": stats.other_missing[j],
                                  **({"scorer_stats": o.stats()} if o.stats() else {})}
                                 for j, o in enumerate(others)]
    ctx.log(f"score: {total} rows, {missing} missing scores")
    return info


"""Step ``perplexity``: conditional perplexity of one generate shard's rows under a reference LM.

params: ``{"perplexity": {"reference", "text" (continuation | completion | prompt), "batch_size"}}`` (plus ``"model"`` when the reference
is ``self``: the generating model, also input ``model``); input ``generations``: one upstream
generate shard. Output: ``shard-iiiii-of-nnnnn.jsonl`` of PerplexityRows, in input order; the
``evaluate`` step joins them to the score rows. Streaming: memory holds one batch. Not chunked
for resume like ``score``: a shard is GPU minutes, not days of API quota.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from typing import Any

from xdetox.records import GenerationRow, PerplexityRow, dumps_row
from xdetox.steps.context import StepContext


def reference_source(ctx: StepContext, ppl_spec: dict[str, Any]) -> str:
    """The reference LM: a model source, or for ``self`` the model that generated the rows."""
    if ppl_spec["reference"] != "self":
        return str(ppl_spec["reference"])
    if ctx.has_input("model"):
        return str(ctx.input_dir("model"))
    model = ctx.params.get("model")
    if not model:
        raise ValueError("perplexity reference 'self' needs the generating model in the perplexity step's params")
    from xdetox.models.resolve import resolve_model_source

    return resolve_model_source(model["source"], model.get("revision"))


def run(ctx: StepContext) -> dict[str, Any]:
    from xdetox.scoring.perplexity import conditional_perplexity, load_reference

    t0 = time.perf_counter()
    ppl_spec = ctx.params["perplexity"]
    batch_size = int(ppl_spec["batch_size"])
    text = ppl_spec.get("text", "continuation")
    shard_name = ctx.manifest.shard.name() if ctx.manifest.shard else "shard-00000-of-00001"
    model, tokenizer = load_reference(reference_source(ctx, ppl_spec))
    rows_by_language, missing = Counter[str](), Counter[str]()
    out_path = ctx.scratch / f"{shard_name}.jsonl"
    rows = ctx.iter_input_rows("generations", GenerationRow)
    with open(out_path, "w", encoding="utf-8") as out:
        while batch := list(itertools.islice(rows, batch_size)):
            if text == "prompt":  # the prompt's own text (e.g. a neutral sentence) under the model, given BOS
                contexts, targets = [""] * len(batch), [r.prompt for r in batch]
            elif text == "completion":  # paper 2's knowledge preservation: the generated text alone, given BOS
                contexts, targets = [""] * len(batch), [r.text for r in batch]
            else:
                contexts, targets = [r.prompt_text for r in batch], [r.text for r in batch]
            values = conditional_perplexity(model, tokenizer, contexts, targets, batch_size=batch_size)
            for row, value in zip(batch, values, strict=True):
                rows_by_language[row.language] += 1
                if value is None:
                    missing[row.language] += 1
                out.write(dumps_row(PerplexityRow(prompt_id=row.prompt_id, language=row.language,
                                                  sample_index=row.sample_index, perplexity=value)))
    ctx.put_file(f"{shard_name}.jsonl", out_path)
    total = sum(rows_by_language.values())
    ctx.log(f"perplexity: {total} rows, {sum(missing.values())} without a value")
    return {
        "rows": total,
        "rows_by_language": dict(sorted(rows_by_language.items())),
        "perplexity_missing_by_language": dict(sorted(missing.items())),
        "reference": str(ppl_spec["reference"]),
        "seconds": round(time.perf_counter() - t0, 3),
    }

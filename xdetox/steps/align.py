"""The ``align`` step: how well a model's hidden states align a pivot language with the others.

For N parallel prompts (the bundled 200-prompt set by default) it mean-pools every hidden state
(embedding output and each layer, as paper 1's code does) over real tokens, then scores each
language against the pivot per layer: paired cosine and nearest-neighbour retrieval accuracy
(see xdetox.metrics.alignment). Writes ``alignment.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xdetox.metrics.alignment import layer_scores
from xdetox.prompts.base import read_objects
from xdetox.records import RecordError
from xdetox.steps.context import StepContext

BUNDLED_XLING = "bundled:xling-prompts-200"


class ParallelSetError(ValueError):
    pass


def parallel_languages(parallel_set: str) -> list[str]:
    """Languages the parallel set has."""
    if parallel_set == BUNDLED_XLING:
        from xdetox.prompts.xling import available_languages

        return available_languages()
    return sorted(p.stem for p in _folder(parallel_set).glob("*.jsonl"))


def load_parallel(parallel_set: str, language: str, limit: int) -> list[str]:
    """The first ``limit`` prompts of one language, index-aligned with every other language.

    ``bundled:xling-prompts-200`` or a local folder with one ``<lang>.jsonl`` per language
    (``{"Prompt": ...}`` or ``{"prompt": ...}`` per line).
    """
    if parallel_set == BUNDLED_XLING:
        from xdetox.prompts.xling import load_xling

        return [item.prompt for item in load_xling(parallel_set, [language])][:limit]
    path = _folder(parallel_set) / f"{language}.jsonl"
    if not path.exists():
        raise ParallelSetError(f"alignment.parallel_set: {path} does not exist")
    out: list[str] = []
    try:
        for n, obj in read_objects(path):
            text = obj.get("Prompt", obj.get("prompt"))
            if not isinstance(text, str) or not text.strip():
                raise ParallelSetError(f"{path}:{n}: field 'Prompt' must be a non-empty string")
            out.append(text)
            if len(out) >= limit:
                break
    except RecordError as e:
        raise ParallelSetError(str(e)) from None
    return out


def _folder(parallel_set: str) -> Path:
    p = Path(parallel_set.removeprefix("file://"))
    if not p.is_dir():
        raise ParallelSetError(f"alignment.parallel_set: {parallel_set!r} is not {BUNDLED_XLING} or a local folder")
    return p


def sentence_embeddings(model: Any, tok: Any, texts: list[str], batch_size: int = 16,
                        max_length: int = 256) -> np.ndarray:
    """Mean-pooled hidden states of every layer over real tokens: shape (layers + 1, N, D).

    Left padding: the attention mask marks the real tokens, so pooling and position ids ignore
    the pads (position ids are derived from the mask, which GPT-2-style models need).
    """
    import torch

    from xdetox.models.hidden import iter_pooled_hidden_states

    chunks: list[np.ndarray] = []
    for pooled, _mask in iter_pooled_hidden_states(model, tok, texts, batch_size, max_length):
        if pooled is None:  # parallel-set texts are non-empty, so this is a tokenizer problem
            raise ParallelSetError("a batch of parallel prompts tokenized to nothing")
        chunks.append(torch.stack(pooled).numpy())
    return np.concatenate(chunks, axis=1)


def _model_dir(ctx: StepContext) -> str:
    if ctx.has_input("model"):
        return str(ctx.input_dir("model"))
    from xdetox.models.resolve import resolve_model_source

    m = ctx.params["model"]
    return resolve_model_source(m["source"], m.get("revision"))


def run(ctx: StepContext) -> dict[str, Any]:
    from xdetox.models.load import load_causal_lm

    p = ctx.params
    spec = p.get("alignment") or {}
    parallel_set = spec.get("parallel_set", BUNDLED_XLING)
    pivot = spec.get("pivot", "en")
    limit = int(spec.get("limit", 200))
    have = set(parallel_languages(parallel_set))
    if pivot not in have:
        raise ParallelSetError(f"alignment.pivot: {pivot!r} is not in {parallel_set} (has {', '.join(sorted(have))})")
    model_params = p.get("model", {})
    model, tok = load_causal_lm(_model_dir(ctx), dtype=model_params.get("dtype", "auto"))
    pivot_texts = load_parallel(parallel_set, pivot, limit)
    pivot_emb = sentence_embeddings(model, tok, pivot_texts)
    languages: dict[str, Any] = {}
    for lang in p.get("languages", []):
        if lang == pivot:
            continue
        if lang not in have:
            languages[lang] = {"available": False, "reason": f"{parallel_set} has no {lang} prompts"}
            continue
        texts = load_parallel(parallel_set, lang, limit)
        if len(texts) != len(pivot_texts):
            raise ParallelSetError(f"{parallel_set}: {lang} has {len(texts)} prompts, {pivot} has {len(pivot_texts)}")
        languages[lang] = {"available": True, **layer_scores(pivot_emb, sentence_embeddings(model, tok, texts))}
        ctx.log(f"align {model_params.get('id')}/{model_params.get('arm')} {pivot}-{lang}: "
                f"cosine {languages[lang]['paired_cosine_mean']:.3f}, "
                f"retrieval {languages[lang]['retrieval_accuracy_mean']:.3f}")
    result = {
        "model_id": model_params.get("id"),
        "arm": model_params.get("arm"),
        "parallel_set": parallel_set,
        "pivot": pivot,
        "n_prompts": len(pivot_texts),
        "layers": int(pivot_emb.shape[0]),
        "layer_note": "index 0 is the embedding output, index k the output of block k",
        "summary": "paired_cosine_mean and retrieval_accuracy_mean average the layers (paper 1's summary)",
        "languages": languages,
    }
    ctx.put_json("alignment.json", result)
    return {"languages": len(languages), "layers": result["layers"], "n_prompts": result["n_prompts"]}

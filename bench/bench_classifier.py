"""Classifier scorer throughput on CPU, one core, with small sequence classifiers.

    python -m bench.bench_classifier [--texts 400] [--batch 32] [--max-length 128] [--json out.json]

Issue 16's benchmarks ask for the classifier scorer's texts/s on CPU with a small model (the GPU
figure with an XLM-R-large-shaped classifier is bench/bench_gpu.py's). Measured through the
scorer's own path (``ClassifierToxicityScorer.score_batch``: tokenize, forward, softmax) on two
shapes of real small multilingual toxicity classifiers, built here with random weights (nothing is
downloaded; throughput depends on shapes and token counts, not on the weights' values):

* MiniLM-L12-H384 (12 layers x 384, 12 heads, intermediate 1536: the multilingual MiniLM that
  small distilled toxicity classifiers use), as a BERT classifier;
* XLM-R base (12 layers x 768, 12 heads, intermediate 3072), as an XLM-R classifier.

Both use the project's 4,000-token BPE tokenizer (built from the bundled ParaDetox text) instead
of the real 250k vocabularies: the embedding lookup costs the same per token, and token counts of
these sentences are of the same order. Texts: the bundled ParaDetox sentences of en de es ru zh
(toxic and neutral sides). ``torch.set_num_threads(1)``: texts per second per core; CPU time is
reported beside wall time so a loaded machine can be read.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHAPES = {
    "minilm-l12-h384": dict(arch="bert", layers=12, hidden=384, heads=12, intermediate=1536),
    "xlmr-base": dict(arch="xlm-roberta", layers=12, hidden=768, heads=12, intermediate=3072),
}


def _corpus() -> list[str]:
    from xdetox.training.paradetox import BUNDLED_DIR, read_language

    return [s for lang in ("en", "de", "es", "ru", "zh") for p in read_language(BUNDLED_DIR, lang)
            for s in (p.toxic, p.neutral)]


def _build(folder: Path, shape: dict[str, Any], tok: Any) -> None:
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        XLMRobertaConfig,
        XLMRobertaForSequenceClassification,
    )

    common = dict(num_hidden_layers=shape["layers"], hidden_size=shape["hidden"],
                  num_attention_heads=shape["heads"], intermediate_size=shape["intermediate"],
                  vocab_size=len(tok), num_labels=2, id2label={0: "neutral", 1: "toxic"},
                  label2id={"neutral": 0, "toxic": 1}, pad_token_id=tok.pad_token_id or 0)
    torch.manual_seed(0)
    if shape["arch"] == "bert":
        model: Any = BertForSequenceClassification(BertConfig(max_position_embeddings=512, **common))
    else:
        model = XLMRobertaForSequenceClassification(XLMRobertaConfig(max_position_embeddings=514, **common))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def measure(name: str, texts: list[str], batch: int, max_length: int, tok: Any) -> dict[str, Any]:
    from xdetox.records import GenerationRow
    from xdetox.scoring.classifier import ClassifierToxicityScorer

    folder = Path(tempfile.mkdtemp(prefix=f"xdetox-bench-clf-{name}-"))
    _build(folder, SHAPES[name], tok)
    rows = [GenerationRow(prompt_id=str(i), language="en", prompt="", prompt_text="", sample_index=0, text=t,
                          seed=0, model_id="m", model_digest="d", arm="base", backend="transformers",
                          prompt_set="p", settings={}, num_tokens=0) for i, t in enumerate(texts)]
    spec = SimpleNamespace(model=str(folder), toxic_label="toxic", batch_size=batch, max_length=max_length,
                           languages=None)
    scorer = ClassifierToxicityScorer.from_spec(spec, device="cpu")
    scorer.score_batch(rows[:batch])  # warm-up
    wall0, cpu0 = time.perf_counter(), time.process_time()
    res = scorer.score_batch(rows)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    scorer.close()
    assert all(r.toxicity is not None and 0.0 <= r.toxicity <= 1.0 for r in res)
    return {"shape": name, **SHAPES[name], "texts": len(rows), "batch": batch, "max_length": max_length,
            "texts_per_s": round(len(rows) / wall, 1), "texts_per_cpu_s": round(len(rows) / cpu, 1),
            "truncated": sum(bool(r.truncated) for r in res)}


def main() -> None:
    import torch

    from xdetox.models.tiny import train_tokenizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=400)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    corpus = _corpus()
    tok = train_tokenizer(corpus, 4000)  # bench_gpu.py's tokenizer
    texts = corpus[::max(1, len(corpus) // a.texts)][:a.texts]  # spread over the five languages
    out = {"device": "cpu", "threads": 1, "torch": torch.__version__,
           "runs": [measure(n, texts, a.batch, a.max_length, tok) for n in a.shapes.split(",")]}
    for r in out["runs"]:
        print(f"{r['shape']:16} {r['texts_per_s']:8.1f} texts/s wall, {r['texts_per_cpu_s']:8.1f} per CPU second "
              f"({r['texts']} texts, batch {r['batch']}, max length {r['max_length']}, {r['truncated']} truncated)")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

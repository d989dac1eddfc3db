"""The align step on a tiny random Llama and a tokenizer trained in the test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from xdetox.manifest import StepManifest
from xdetox.steps.align import load_parallel, parallel_languages, sentence_embeddings
from xdetox.steps.runner import run_step
from xdetox.store import open_store

LANGS = ["en", "de", "zh", "ru"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    lines = [t for lang in LANGS for t in load_parallel("bundled:xling-prompts-200", lang, 200)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(lines, trainer=trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<pad>", padding_side="left")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=fast.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      pad_token_id=fast.pad_token_id)
    out = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(cfg).save_pretrained(out)
    fast.save_pretrained(out)
    return out


def test_mean_pooling_ignores_left_padding(tiny_model: Path) -> None:
    from xdetox.models.load import load_causal_lm

    model, tok = load_causal_lm(tiny_model, device="cpu")
    short, long = "hello there", "a much longer sentence that forces padding on the short one"
    alone = sentence_embeddings(model, tok, [short])
    batched = sentence_embeddings(model, tok, [short, long])
    assert alone.shape == (3, 1, 32)  # embedding output + 2 layers
    np.testing.assert_allclose(alone[:, 0], batched[:, 0], atol=1e-4)


def test_align_step_writes_per_layer_scores(tiny_model: Path, tmp_path: Path) -> None:
    assert {"en", "de", "zh"} <= set(parallel_languages("bundled:xling-prompts-200"))
    store = open_store(tmp_path.as_uri())
    params = {"model": {"id": "tiny", "source": str(tiny_model), "revision": None, "dtype": "float32",
                        "architecture": "llama", "arm": "base"},
              "alignment": {"parallel_set": "bundled:xling-prompts-200", "pivot": "en", "languages": None,
                            "limit": 24},
              "languages": ["en", "de", "zh", "sw"]}
    key = StepManifest.compute_key("align", params, {}, None)
    m = StepManifest(kind="align", key=key, run_id="t", label="align", params=params, inputs={},
                     output_prefix=f"alignment/{key}")
    rec, cached = run_step(m, store, log=lambda s: None)
    assert not cached and rec.info["layers"] == 3 and rec.info["n_prompts"] == 24
    data = json.loads(store.get_bytes(f"alignment/{key}/alignment.json"))
    assert data["pivot"] == "en" and "en" not in data["languages"]
    assert data["languages"]["sw"]["available"] is False  # not in the parallel set: recorded, not invented
    for lang in ("de", "zh"):
        v = data["languages"][lang]
        assert len(v["paired_cosine"]) == 3 and len(v["retrieval_accuracy"]) == 3
        assert all(-1.0 <= c <= 1.0 for c in v["paired_cosine"])
        assert all(0.0 <= a <= 1.0 for a in v["retrieval_accuracy"])
        assert v["paired_cosine_mean"] == pytest.approx(np.mean(v["paired_cosine"]))


def test_align_identical_languages_align_perfectly(tiny_model: Path, tmp_path: Path) -> None:
    """A 'translation' that is the pivot itself: cosine 1 and retrieval 1 in every layer."""
    from xdetox.metrics.alignment import layer_scores
    from xdetox.models.load import load_causal_lm

    folder = tmp_path / "par"
    folder.mkdir()
    texts = load_parallel("bundled:xling-prompts-200", "en", 12)
    for lang in ("en", "xx"):
        (folder / f"{lang}.jsonl").write_text("".join(json.dumps({"Prompt": t}) + "\n" for t in texts))
    model, tok = load_causal_lm(tiny_model, device="cpu")
    a = sentence_embeddings(model, tok, load_parallel(str(folder), "en", 12), batch_size=5)
    b = sentence_embeddings(model, tok, load_parallel(str(folder), "xx", 12), batch_size=7)
    s = layer_scores(a, b)
    assert s["paired_cosine_mean"] == pytest.approx(1.0, abs=1e-5)
    assert s["retrieval_accuracy_mean"] == 1.0


def test_correlation_uses_the_relative_reduction_so_better_alignment_gives_positive_r() -> None:
    """Paper 1: languages better aligned with English lose more toxicity, r > 0 (0.73 for mGPT)."""
    from xdetox.metrics.alignment import alignment_correlation, relative_reduction

    before = {"de": 0.50, "es": 0.50, "zh": 0.50}
    after = {"de": 0.10, "es": 0.30, "zh": 0.45}
    reduction = {lang: relative_reduction(before[lang], after[lang]) for lang in before}
    assert reduction == pytest.approx({"de": 0.8, "es": 0.4, "zh": 0.1})  # (0.5 - 0.1) / 0.5, ...
    alignment = {"de": 0.9, "es": 0.5, "zh": 0.1}
    # by hand: x = (0.9, 0.5, 0.1), y = (0.8, 0.4, 0.1); deviations (0.4, 0, -0.4) and
    # (0.3667, -0.0333, -0.3333): r = 0.28 / sqrt(0.32 * 0.2467) = 0.9966
    res = alignment_correlation(alignment, reduction)
    assert res["r"] == pytest.approx(0.28 / (0.32 * 0.24666666666666667) ** 0.5, rel=1e-9)
    assert res["r"] > 0.99
    assert relative_reduction(0.0, 0.1) is None and relative_reduction(None, 0.1) is None

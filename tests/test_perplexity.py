"""Conditional perplexity: batched, left-padded results equal a hand computation one pair at a time."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.scoring_fixtures import build_causal_lm, build_seq2seq, build_tokenizer
from xdetox.scoring.perplexity import conditional_perplexity, load_reference

PROMPTS = ["the quick brown fox", "you are a", "a", "быстрая коричневая лиса прыгает через ленивую собаку и",
           "", "what a lovely"]
CONTS = [" jumps over the lazy dog", " stupid idiot and I hate you", " day", " бежит", " the dog", ""]


def hand_causal(model: Any, tok: Any, prompt: str, cont: str) -> float:
    """exp(mean NLL) of the continuation's tokens, unpadded, one pair."""
    import torch

    p = tok(prompt)["input_ids"] if prompt else []
    if not p and tok.bos_token_id is not None:
        p = [tok.bos_token_id]
    full = tok(prompt + cont)["input_ids"]
    if full[:len(p)] != p:  # e.g. a BOS the tokenizer does not add itself
        full = p + tok(cont, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([full])).logits[0].float(), -1)
    nll = [-logp[t - 1, full[t]].item() for t in range(max(len(p), 1), len(full))]
    return math.exp(sum(nll) / len(nll))


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    folder = build_causal_lm(tmp_path_factory.mktemp("gpt2"))
    return load_reference(str(folder), device="cpu")


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("llama")
    tok = build_tokenizer(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(str(folder))
    return load_reference(str(folder), device="cpu")


@pytest.mark.parametrize("which", ["gpt2", "llama"])
def test_batched_left_padded_equals_one_by_one(which: str, request: pytest.FixtureRequest) -> None:
    model, tok = request.getfixturevalue(which)
    assert tok.padding_side == "left"
    got = conditional_perplexity(model, tok, PROMPTS, CONTS, batch_size=4)
    one = [conditional_perplexity(model, tok, [p], [c], batch_size=1)[0] for p, c in zip(PROMPTS, CONTS, strict=True)]
    for i, (p, c) in enumerate(zip(PROMPTS, CONTS, strict=True)):
        if not c:
            assert got[i] is None and one[i] is None
            continue
        want = hand_causal(model, tok, p, c)
        assert got[i] == pytest.approx(want, rel=1e-4), (i, p, c)
        assert one[i] == pytest.approx(want, rel=1e-4)
    assert got[0] != pytest.approx(got[1])  # not a constant


def test_padding_without_position_ids_would_differ(gpt2: tuple[Any, Any]) -> None:
    """The check above is meaningful: GPT-2 scores change when positions ignore the padding."""
    import torch

    model, tok = gpt2
    short = tok("a")["input_ids"] + tok(" day", add_special_tokens=False)["input_ids"]
    padded = torch.tensor([[tok.pad_token_id] * 5 + short])
    mask = torch.tensor([[0] * 5 + [1] * len(short)])
    with torch.no_grad():
        naive = model(input_ids=padded, attention_mask=mask).logits[0, -1]
        right = model(input_ids=padded, attention_mask=mask,
                      position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits[0, -1]
        ref = model(input_ids=torch.tensor([short])).logits[0, -1]
    assert torch.allclose(right, ref, atol=1e-4) and not torch.allclose(naive, ref, atol=1e-4)


def test_seq2seq_is_paper_ones_formula(tmp_path: Path) -> None:
    """Paper 1 (xg/eval/metric_perplexity.py): full text and prompt each as encoder input and labels,
    exp((full_loss * (len(full) - 1) - prompt_loss * (len(prompt) - 1)) / (len(full) - len(prompt))),
    computed here one example at a time exactly as their loop does; blank continuations skipped."""
    import torch

    model, tok = load_reference(str(build_seq2seq(tmp_path / "t5")), device="cpu")
    assert model.config.is_encoder_decoder
    got = conditional_perplexity(model, tok, PROMPTS, CONTS, batch_size=3)
    for i, (p, c) in enumerate(zip(PROMPTS, CONTS, strict=True)):
        if not c or not c.strip():
            assert got[i] is None
            continue
        full = torch.tensor([tok.encode(p + c)])
        prompt = torch.tensor([tok.encode(p) or [tok.eos_token_id]])  # mT5 encodes "" as EOS alone
        with torch.no_grad():
            full_loss = model(full, labels=full)[0] * (full.shape[1] - 1)
            prompt_loss = model(prompt, labels=prompt)[0] * (prompt.shape[1] - 1)
        loss = (full_loss - prompt_loss) / (full.shape[1] - prompt.shape[1])
        assert got[i] == pytest.approx(math.exp(loss.item()), rel=1e-4), i


def test_length_mismatch_is_an_error(gpt2: tuple[Any, Any]) -> None:
    with pytest.raises(ValueError, match="2 prompts but 1 continuations"):
        conditional_perplexity(gpt2[0], gpt2[1], ["a", "b"], ["c"])


@pytest.mark.slow
def test_builtin_tiny_reference_is_built_once(isolated_cache: Path) -> None:
    from xdetox.models.tiny import TINY_VERSION

    model, tok = load_reference("builtin:tiny", device="cpu")
    built = list((isolated_cache / "models" / "builtin").iterdir())
    assert [p.name for p in built] == [f"tiny-v{TINY_VERSION}-seed1234"]
    ppl = conditional_perplexity(model, tok, ["You are a", "Das ist"], [" stupid idiot", " ein Hund"])
    assert all(p is not None and 1.0 < p < 3000 for p in ppl)
    load_reference("builtin:tiny", device="cpu")  # cached: no second build folder
    assert list((isolated_cache / "models" / "builtin").iterdir()) == built

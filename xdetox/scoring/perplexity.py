"""Conditional perplexity of a continuation given its prompt, under a reference model.

``conditional_perplexity(model, tokenizer, prompts, continuations)`` returns
``exp(mean NLL of the continuation's tokens)`` per pair, or None for an empty continuation.
For a causal LM this equals paper 1's goodtriever formula, exp((full_total - prompt_total) /
(len(full) - len(prompt))), whenever the prompt's tokens are a prefix of the full text's.

- Causal LMs are batched with LEFT padding: a token is counted only where it and its predecessor
  are real tokens, and ``position_ids`` come from the attention mask (cumsum - 1), so GPT-2-style
  absolute positions are the same as in an unpadded run. The continuation's tokens are the
  suffix of the tokenized ``prompt + continuation`` after the tokenized prompt when that is a
  prefix; otherwise prompt and continuation are tokenized separately and concatenated. A prompt
  too long for the model is cut from the left.
- Seq2seq models (paper 1's mT5-XL): paper 1's own formula (xg/eval/metric_perplexity.py, after
  goodtriever): prompt + continuation as both encoder input and labels, and the prompt alone
  likewise; exp((full_total - prompt_total) / (len(full) - len(prompt))) from total losses.
- Empty or blank continuations get None (paper 1 skips them). Values >= 1e4 are dropped later, in
  the aggregation (xdetox.metrics.perplexity), as paper 1 does.
Pairs are sorted by length before batching and returned in input order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from xdetox.models.hidden import accepts_position_ids, positions_from_mask


def _max_length(model: Any, default: int = 1024) -> int:
    cfg = model.config
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        v = getattr(cfg, name, None)
        if isinstance(v, int) and v > 0:
            return v
    return default


def _causal_ids(tokenizer: Any, prompt: str, cont: str) -> tuple[list[int], int]:
    """(ids of prompt + continuation, number of continuation tokens at the end)."""
    p_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"] if prompt else []
    if not p_ids and tokenizer.bos_token_id is not None:
        p_ids = [tokenizer.bos_token_id]
    full = tokenizer(prompt + cont, add_special_tokens=True)["input_ids"]
    if len(full) > len(p_ids) and full[:len(p_ids)] == p_ids:
        return full, len(full) - len(p_ids)
    c_ids = tokenizer(cont, add_special_tokens=False)["input_ids"]
    return p_ids + c_ids, len(c_ids)


def _causal(model: Any, tokenizer: Any, prompts: Sequence[str], conts: Sequence[str],
            batch_size: int) -> list[float | None]:
    import torch

    device = next(model.parameters()).device
    limit = _max_length(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    takes_positions = accepts_position_ids(model)
    encoded: list[tuple[list[int], int]] = []
    for p, c in zip(prompts, conts, strict=True):
        ids, n_cont = _causal_ids(tokenizer, p, c) if c and c.strip() else ([], 0)  # blank: skipped (paper 1)
        if len(ids) > limit:
            ids = ids[len(ids) - limit:]
            n_cont = min(n_cont, limit)
        encoded.append((ids, n_cont))
    out: list[float | None] = [None] * len(encoded)
    order = sorted((i for i, (_, n) in enumerate(encoded) if n > 0), key=lambda i: len(encoded[i][0]))
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        width = max(len(encoded[i][0]) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        is_cont = torch.zeros((len(idx), width), dtype=torch.bool)
        for r, i in enumerate(idx):
            seq, n_cont = encoded[i]
            ids[r, width - len(seq):] = torch.tensor(seq)
            mask[r, width - len(seq):] = 1
            is_cont[r, width - n_cont:] = True
        kwargs: dict[str, Any] = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
        if takes_positions:
            kwargs["position_ids"] = positions_from_mask(mask).to(device)
        with torch.inference_mode():
            logits = model(**kwargs).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        target = kwargs["input_ids"][:, 1:]
        nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).cpu()
        counted = (mask[:, 1:] == 1) & (mask[:, :-1] == 1) & is_cont[:, 1:]
        for r, i in enumerate(idx):
            n = int(counted[r].sum())
            out[i] = math.exp(float(nll[r][counted[r]].sum()) / n) if n else None
    return out


def _seq2seq_totals(model: Any, tokenizer: Any, seqs: Sequence[list[int]], batch_size: int) -> list[float]:
    """Per sequence: the model's mean label NLL with the sequence as both encoder input and labels,
    times (len - 1): paper 1's "total loss" (``model(ids, labels=ids)[0] * (ids.shape[1] - 1)``)."""
    import torch

    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = [0.0] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        width = max(len(seqs[i]) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        labels = torch.full((len(idx), width), -100, dtype=torch.long)
        for r, i in enumerate(idx):  # right padding: T5-style models use relative positions
            seq = torch.tensor(seqs[i], dtype=torch.long)
            ids[r, :len(seq)], mask[r, :len(seq)], labels[r, :len(seq)] = seq, 1, seq
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                           labels=labels.to(device)).logits.float()
        logp = torch.log_softmax(logits, dim=-1).cpu()
        valid = labels != -100
        nll = -logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        for r, i in enumerate(idx):
            n = int(valid[r].sum())
            out[i] = float(nll[r][valid[r]].sum()) / n * (n - 1) if n else 0.0
    return out


def _seq2seq(model: Any, tokenizer: Any, prompts: Sequence[str], conts: Sequence[str],
             batch_size: int) -> list[float | None]:
    """Paper 1's perplexity under a seq2seq model (mT5-XL; xg/eval/metric_perplexity.py, after
    goodtriever): the full text (prompt + continuation) is both the encoder input and the labels,
    and so is the prompt alone; ppl = exp((full_total - prompt_total) / (len(full) - len(prompt))),
    from total losses. Empty (or blank) continuations are skipped (None), as in their code."""
    limit = _max_length(model, default=512)
    todo = [i for i, c in enumerate(conts) if c and c.strip()]
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    # an empty text is EOS alone, as mT5's tokenizer encodes it: an encoder cannot take zero tokens
    full = [(tokenizer(prompts[i] + conts[i])["input_ids"] or [eos])[-limit:] for i in todo]
    prompt = [(tokenizer(prompts[i])["input_ids"] or [eos])[-limit:] for i in todo]
    totals = _seq2seq_totals(model, tokenizer, full + prompt, batch_size)
    out: list[float | None] = [None] * len(prompts)
    for k, i in enumerate(todo):
        extra = len(full[k]) - len(prompt[k])
        if extra <= 0:
            continue
        loss = (totals[k] - totals[len(todo) + k]) / extra
        out[i] = math.exp(loss) if loss < 700 else math.inf  # exp overflows past ~709: beyond any limit
    return out


def conditional_perplexity(model: Any, tokenizer: Any, prompts: Sequence[str], continuations: Sequence[str],
                           batch_size: int = 16) -> list[float | None]:
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    if getattr(model.config, "is_encoder_decoder", False):
        return _seq2seq(model, tokenizer, prompts, continuations, batch_size)
    return _causal(model, tokenizer, prompts, continuations, batch_size)


def load_reference(source: str, device: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a reference LM: a causal LM or a seq2seq model, from any model source."""
    from transformers import AutoConfig

    from xdetox.models.load import default_device, load_causal_lm
    from xdetox.models.resolve import resolve_model_source

    path = builtin_reference(source) if source.startswith("builtin:") else resolve_model_source(source)
    device = device or default_device()
    if getattr(AutoConfig.from_pretrained(path), "is_encoder_decoder", False):
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        model = AutoModelForSeq2SeqLM.from_pretrained(path).to(device).eval()
        return model, AutoTokenizer.from_pretrained(path)
    return load_causal_lm(path, device=device)


def builtin_reference(source: str, seed: int = 1234) -> str:
    """A builtin model as a reference LM: built once (deterministically) into the cache."""
    from xdetox.models.tiny import TINY_VARIANTS, cached_build

    if source not in TINY_VARIANTS:
        raise ValueError(f"metrics.perplexity.reference: unknown builtin model {source!r}; "
                         f"available: {', '.join(TINY_VARIANTS)}")
    return str(cached_build(source, seed)[0])

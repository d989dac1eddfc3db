"""Conditional perplexity of a continuation given its prompt, under a reference model.

``conditional_perplexity(model, tokenizer, prompts, continuations)`` returns
``exp(mean NLL of the continuation's tokens)`` per pair, or None for an empty continuation.

- Causal LMs are batched with LEFT padding: a token is counted only where it and its predecessor
  are real tokens, and ``position_ids`` come from the attention mask (cumsum - 1), so GPT-2-style
  absolute positions are the same as in an unpadded run. The continuation's tokens are the
  suffix of the tokenized ``prompt + continuation`` after the tokenized prompt when that is a
  prefix; otherwise prompt and continuation are tokenized separately and concatenated. A prompt
  too long for the model is cut from the left.
- Seq2seq models (paper 1's mT5): the prompt is the encoder input (right-padded; cut from the left
  when too long), the continuation (no EOS) the decoder labels.
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
        ids, n_cont = _causal_ids(tokenizer, p, c) if c else ([], 0)
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


def _seq2seq(model: Any, tokenizer: Any, prompts: Sequence[str], conts: Sequence[str],
             batch_size: int) -> list[float | None]:
    import torch

    device = next(model.parameters()).device
    out: list[float | None] = [None] * len(prompts)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else pad_id
    idx_all = [i for i, c in enumerate(conts) if c]
    for b in range(0, len(idx_all), batch_size):
        idx = idx_all[b:b + batch_size]
        limit = _max_length(model, default=512)
        # an empty prompt is encoded as EOS alone: an encoder cannot take zero tokens
        srcs = [(tokenizer(prompts[i])["input_ids"] or [eos])[-limit:] for i in idx]
        src_w = max(len(x) for x in srcs)
        src = torch.full((len(idx), src_w), pad_id, dtype=torch.long)
        src_mask = torch.zeros((len(idx), src_w), dtype=torch.long)
        for r, seq in enumerate(srcs):  # right padding: T5-style encoders use relative positions
            src[r, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            src_mask[r, :len(seq)] = 1
        labels = [tokenizer(conts[i], add_special_tokens=False)["input_ids"] for i in idx]
        width = max(len(x) for x in labels)
        if width == 0:
            continue
        lab = torch.full((len(idx), width), -100, dtype=torch.long)
        for r, seq in enumerate(labels):
            lab[r, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        with torch.inference_mode():
            logits = model(input_ids=src.to(device), attention_mask=src_mask.to(device),
                           labels=lab.to(device)).logits.float()
        logp = torch.log_softmax(logits, dim=-1).cpu()
        valid = lab != -100
        nll = -logp.gather(-1, lab.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        for r, i in enumerate(idx):
            n = int(valid[r].sum())
            out[i] = math.exp(float(nll[r][valid[r]].sum()) / n) if n else None
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
    """``builtin:tiny`` as a reference LM: built once (deterministically) into the cache."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from xdetox.models.tiny import TINY_VERSION, build_tiny_model
    from xdetox.steps.context import cache_root

    if source != "builtin:tiny":
        raise ValueError(f"metrics.perplexity.reference: unknown builtin model {source!r}; available: builtin:tiny")
    dest = cache_root() / "models" / f"builtin-tiny-v{TINY_VERSION}-seed{seed}"
    if not (dest / "config.json").exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
        try:
            build_tiny_model(tmp, seed=seed)
            try:
                os.replace(tmp, dest)  # atomic: a concurrent shard either sees all of it or builds its own
            except OSError:
                if not (dest / "config.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return str(dest)

"""Forward passes over left-padded batches: position ids from the mask, and mean-pooled states.

Under left padding, models with absolute positions (GPT-2) need position ids derived from the
attention mask; ALiBi models (BLOOM) take none at all. Pooling averages over real tokens only.
Used by the align step, the neuron analysis and the perplexity scorer.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from typing import Any


def accepts_position_ids(model: Any) -> bool:
    return "position_ids" in inspect.signature(model.forward).parameters


def positions_from_mask(mask: Any) -> Any:
    """Position 0 at each row's first real token; pads get 0 (they are masked anyway)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def iter_pooled_hidden_states(model: Any, tok: Any, texts: Sequence[str], batch_size: int = 16,
                              max_length: int = 256) -> Iterator[tuple[list[Any] | None, Any]]:
    """Per batch of ``texts``: the mean over real tokens of every hidden state (embeddings first,
    each [batch, hidden] float32 on the CPU), and the batch's attention mask. The states are None
    when no text of the batch has a single token (nothing to run the model on)."""
    import torch

    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    device = next(model.parameters()).device
    takes_pos = accepts_position_ids(model)
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tok(list(texts[start:start + batch_size]), return_tensors="pt", padding=True, truncation=True,
                      max_length=max_length)
            ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
            if ids.shape[1] == 0:
                yield None, mask
                continue
            extra = {"position_ids": positions_from_mask(mask)} if takes_pos else {}
            out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, **extra)
            m = mask.unsqueeze(-1).to(out.hidden_states[0].dtype)
            yield [((h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)).float().cpu() for h in out.hidden_states], mask

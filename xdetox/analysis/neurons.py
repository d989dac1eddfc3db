"""Toxic neurons (paper 1, section 6): value vectors aligned with a toxicity probe, their activations
under greedy decoding, and the offset intervention.

A "neuron" is (layer, index) of an MLP's hidden units; its *value vector* is the matching row of the
down-projection (GPT-2 ``mlp.c_proj``, whose Conv1D weight is [inner, hidden]; BLOOM
``dense_4h_to_h`` and Llama ``down_proj`` store the transpose). Its *activation* is the input of
that down-projection at the neuron's index (GPT-2's post-GELU ``mlp_post``), read and edited with
forward pre-hooks, so the same code serves every architecture that has a down-projection.

Functions take an in-memory model and tokenizer; torch is imported lazily by the caller's import of
this module (it needs torch at import time: keep it out of the CLI's import path).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

Neuron = tuple[int, int]


class NeuronAnalysisError(ValueError):
    pass


_BLOCK_PATHS = ("transformer.h", "model.layers", "base_model.model.transformer.h", "base_model.model.model.layers")


def _blocks(model: Any) -> Any:
    for path in _BLOCK_PATHS:
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        else:
            return obj
    raise NeuronAnalysisError(f"{type(model).__name__}: no decoder blocks ({', '.join(_BLOCK_PATHS)}) found")


def down_projections(model: Any) -> list[tuple[torch.nn.Module, bool]]:
    """Each layer's MLP down-projection and whether its weight is [inner, hidden] (GPT-2 Conv1D)."""
    blocks = _blocks(model)
    out = []
    for i, block in enumerate(blocks):
        mlp = getattr(block, "mlp", None)
        for name, rows_are_neurons in (("c_proj", True), ("dense_4h_to_h", False), ("down_proj", False)):
            mod = getattr(mlp, name, None) if mlp is not None else None
            if mod is not None:
                out.append((mod, rows_are_neurons))
                break
        else:
            raise NeuronAnalysisError(f"{type(model).__name__}: layer {i} has no MLP down-projection "
                                      "(mlp.c_proj, mlp.dense_4h_to_h or mlp.down_proj)")
    return out


def value_vectors(model: Any) -> tuple[torch.Tensor, int]:
    """All value vectors stacked: ([layers * inner, hidden] float32, inner)."""
    mats = []
    for mod, rows_are_neurons in down_projections(model):
        w = mod.weight.detach().float()
        mats.append(w if rows_are_neurons else w.T)
    inner = mats[0].shape[0]
    return torch.cat(mats, dim=0), inner


@dataclass(frozen=True)
class ScoredNeuron:
    layer: int
    index: int
    cosine: float


def top_value_vectors(model: Any, probe: torch.Tensor, k: int) -> list[ScoredNeuron]:
    """The ``k`` value vectors with the highest cosine similarity to the probe direction."""
    vv, inner = value_vectors(model)
    probe = probe.detach().float().flatten().to(vv.device)
    if probe.numel() != vv.shape[1]:
        raise NeuronAnalysisError(f"probe has {probe.numel()} dimensions but the model's hidden size is {vv.shape[1]}")
    cos = torch.nn.functional.cosine_similarity(vv, probe.unsqueeze(0), dim=1)
    values, idx = torch.topk(cos, min(k, cos.numel()))
    return [ScoredNeuron(int(i) // inner, int(i) % inner, float(v)) for v, i in zip(values, idx, strict=True)]


def _by_layer(neurons: Sequence[Neuron]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for layer, index in neurons:
        out.setdefault(int(layer), []).append(int(index))
    return out


def check_neurons(model: Any, neurons: Sequence[Neuron]) -> None:
    projs = down_projections(model)
    inner = value_vectors(model)[1]
    for layer, index in neurons:
        if not (0 <= layer < len(projs)) or not (0 <= index < inner):
            raise NeuronAnalysisError(f"neuron ({layer}, {index}) is outside the model: "
                                      f"{len(projs)} layers x {inner} MLP units")


HookFactory = Callable[[int, list[int], torch.Tensor], Callable[..., Any]]


@contextlib.contextmanager
def _pre_hooks(model: Any, neurons: Sequence[Neuron], make_hook: HookFactory) -> Iterator[None]:
    """While active, a forward pre-hook on each layer's down projection that holds listed neurons;
    ``make_hook(layer, unit indices, index tensor)`` builds it. Removed on exit, even on error."""
    projs = down_projections(model)
    handles = [projs[layer][0].register_forward_pre_hook(make_hook(layer, idx, torch.tensor(idx, dtype=torch.long)))
               for layer, idx in _by_layer(neurons).items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def intervene(model: Any, neurons: Sequence[Neuron], offset: float = 0.0, scale: float = 1.0) -> Iterator[None]:
    """While active, each listed neuron's activation a becomes a * scale + offset at every position
    (paper 1 adds a constant offset; scale 0 ablates)."""

    def make_hook(_layer: int, _idx: list[int], index: torch.Tensor) -> Callable[..., Any]:
        def hook(_mod: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
            x = args[0].clone()
            i = index.to(x.device)
            x[..., i] = x[..., i] * scale + offset
            return (x, *args[1:])

        return hook

    with _pre_hooks(model, neurons, make_hook):
        yield


@contextlib.contextmanager
def record(model: Any, neurons: Sequence[Neuron], sink: dict[Neuron, list[torch.Tensor]]) -> Iterator[None]:
    """Append each listed neuron's activation at the last position of every forward pass to ``sink``."""

    def make_hook(layer: int, idx: list[int], index: torch.Tensor) -> Callable[..., Any]:
        def hook(_mod: torch.nn.Module, args: tuple[Any, ...]) -> None:
            last = args[0][:, -1, :].index_select(-1, index.to(args[0].device)).float().cpu()
            for j, n in enumerate(idx):
                sink.setdefault((layer, n), []).append(last[:, j])

        return hook

    with _pre_hooks(model, neurons, make_hook):
        yield


@dataclass
class GreedyActivations:
    per_neuron: dict[Neuron, float]
    mean: float
    continuations: list[str]


def greedy_activations(model: Any, tok: Any, prompts: Sequence[str], neurons: Sequence[Neuron],
                       max_new_tokens: int = 20, batch_size: int = 8) -> GreedyActivations:
    """Greedy-decode ``max_new_tokens`` tokens per prompt; average each neuron's activation at the
    position that predicts each new token (paper 1's collection), over tokens and prompts."""
    check_neurons(model, neurons)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    device = next(model.parameters()).device
    sink: dict[Neuron, list[torch.Tensor]] = {}
    texts: list[str] = []
    with torch.no_grad(), record(model, neurons, sink):
        for start in range(0, len(prompts), batch_size):
            enc = tok(list(prompts[start:start + batch_size]), return_tensors="pt", padding=True).to(device)
            # min_new_tokens: every prompt contributes the same number of positions (no early EOS)
            out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens,
                                 min_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)
            texts.extend(tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    per_neuron = {n: float(torch.cat(sink[n]).mean()) for n in neurons if n in sink}
    mean = float(sum(per_neuron.values()) / len(per_neuron)) if per_neuron else float("nan")
    return GreedyActivations(per_neuron=per_neuron, mean=mean, continuations=texts)


def pooled_last_hidden(model: Any, tok: Any, texts: Sequence[str], batch_size: int = 16,
                       max_length: int = 256) -> tuple[torch.Tensor, list[bool]]:
    """Mean over real tokens of the last hidden state (after the final layer norm, as the probe
    was trained): ([N, hidden] float32, which texts had any token). Empty texts get a zero row."""
    from xdetox.models.hidden import iter_pooled_hidden_states

    rows: list[torch.Tensor] = []
    present: list[bool] = []
    for pooled, mask in iter_pooled_hidden_states(model, tok, texts, batch_size, max_length):
        if pooled is None:  # every text in the batch was empty
            rows.append(torch.zeros(mask.shape[0], model.config.hidden_size))
            present.extend([False] * mask.shape[0])
            continue
        rows.append(pooled[-1])
        present.extend(bool(x) for x in (mask.sum(1) > 0).tolist())
    return torch.cat(rows), present


def probe_scores(model: Any, tok: Any, probe: torch.Tensor, texts: Sequence[str]) -> list[float | None]:
    """sigmoid(w · pooled last hidden state) per text; an empty text has no score (None)."""
    feats, present = pooled_last_hidden(model, tok, texts)
    w = probe.detach().float().flatten()
    if w.numel() != feats.shape[1]:
        raise NeuronAnalysisError(f"probe has {w.numel()} dimensions but the model's hidden size is {feats.shape[1]}")
    s = torch.sigmoid(feats @ w).tolist()
    return [float(v) if ok else None for v, ok in zip(s, present, strict=True)]


def train_probe(features: torch.Tensor, labels: torch.Tensor, l2: float = 1e-3, max_iter: int = 200) -> torch.Tensor:
    """Logistic regression without bias (paper 1's probe is ``nn.Linear(hidden, 1, bias=False)``),
    L2-regularised, fitted with L-BFGS: the weight vector [hidden]."""
    x = features.detach().float()
    y = labels.detach().float().flatten()
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise NeuronAnalysisError(f"probe training needs matching, non-empty features ({x.shape[0]}) and labels ({y.shape[0]})")
    if len(set(y.tolist())) < 2:
        raise NeuronAnalysisError("probe training needs both toxic (1) and neutral (0) examples")
    w = torch.zeros(x.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach()


def mean_or_none(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None

"""Choosing and building a backend: ``auto`` takes vLLM where it is installed and a GPU is present."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from xdetox.generation.backend import Backend, Sampling

BACKENDS = ("transformers", "vllm")


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def gpu_present() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_backend(name: str) -> str:
    if name == "auto":
        return "vllm" if vllm_installed() and gpu_present() else "transformers"
    if name not in BACKENDS:
        raise ValueError(f"generation.backend: unknown backend {name!r}; use auto, {', '.join(BACKENDS)}")
    if name == "vllm" and not vllm_installed():
        raise RuntimeError("generation.backend is vllm but vllm is not installed in this environment "
                           "(GPU image: the generate image; CPU: scripts/setup_vllm_cpu.sh)")
    return name


def backend_for_model(name: str, model_dir: str | Path, sampling: Sampling | None = None) -> tuple[str, str]:
    """The backend that can serve this model with these settings, and why it is not ``name`` when it
    is not. vLLM does not serve encoder-decoder (T5-family) models, so paper 2's mT5 runs with
    transformers whatever the spec asks; nor does its sampler take beams (its beam search is a separate
    API without sampling) or a no-repeat-n-gram rule, so those settings run with transformers too.
    The generation rows and the step's info name the backend that actually ran."""
    if name == "vllm":
        from xdetox.models.load import is_seq2seq

        if is_seq2seq(model_dir):
            return "transformers", "an encoder-decoder model, which vLLM does not serve"
        if sampling is not None and sampling.num_beams > 1:
            return "transformers", f"num_beams {sampling.num_beams}: vLLM's sampler has no beam search"
        if sampling is not None and sampling.no_repeat_ngram_size is not None:
            return "transformers", "no_repeat_ngram_size: vLLM's sampler has no such rule"
    return name, ""


def make_backend(name: str, model_dir: str | Path, dtype: str = "auto") -> Backend:
    """Build the backend ``name`` (already resolved, not ``auto``) for the model at ``model_dir``."""
    name, _ = backend_for_model(name, model_dir)
    if name == "vllm":
        from xdetox.generation.vllm_backend import VLLMBackend

        return VLLMBackend(model_dir, dtype=dtype)
    if name == "transformers":
        from xdetox.generation.hf import TransformersBackend

        return TransformersBackend(model_dir, dtype=dtype)
    raise ValueError(f"unknown backend {name!r}")


#: set to 1 to keep the last loaded backend for the next step in this process (tests, benchmarks,
#: an executor running many shards of one model in-process): vLLM's engine start dominates small shards.
REUSE_ENV = "XDETOX_REUSE_BACKEND"
_KEPT: dict[tuple[str, str, str], Backend] = {}


def acquire_backend(name: str, model_dir: str | Path, dtype: str = "auto") -> Backend:
    key = (name, str(Path(model_dir).resolve()) if Path(model_dir).exists() else str(model_dir), dtype)
    if os.environ.get(REUSE_ENV) != "1":
        return make_backend(name, model_dir, dtype)
    if key not in _KEPT:
        while _KEPT:  # one model at a time
            _KEPT.popitem()[1].close()
        _KEPT[key] = make_backend(name, model_dir, dtype)
    return _KEPT[key]


def release_backend(backend: Backend) -> None:
    if not any(backend is kept for kept in _KEPT.values()):
        backend.close()

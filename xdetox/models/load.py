"""Load a language model and its tokenizer from a folder: full weights, or base + LoRA adapter.

Causal LMs and encoder-decoder (seq2seq) models alike: which one a folder holds is read from its
config (``is_encoder_decoder``), never from the model's name, so paper 2's mT5 loads as the
``AutoModelForSeq2SeqLM`` it is and every decoder-only model as an ``AutoModelForCausalLM``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pick_dtype(dtype: str, device: str) -> Any:
    import torch

    if dtype == "auto":
        # bf16 on a GPU that has it; float32 on CPU (bf16 is slow and fragile there).
        return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _base_of(path: str | Path) -> str:
    """The folder (or hub id) holding the base weights of ``path``: itself, or for base + adapter
    ``<folder>/base`` when present, else the adapter's ``base_model_name_or_path``."""
    import json

    p = Path(path)
    if p.is_dir() and (p / "adapter_config.json").exists():
        if (p / "base").exists():
            return str(p / "base")
        return str(json.loads((p / "adapter_config.json").read_text())["base_model_name_or_path"])
    return str(path)


def is_seq2seq(path: str | Path) -> bool:
    """True when the model at ``path`` (folder, base + adapter folder, or hub id) is an encoder-decoder."""
    from transformers import AutoConfig

    return bool(getattr(AutoConfig.from_pretrained(_base_of(path)), "is_encoder_decoder", False))


def auto_model_class(seq2seq: bool) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM


def load_tokenizer(path: str | Path, seq2seq: bool = False) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    # Decoder-only models continue a prompt, so prompts are left-padded; an encoder reads the
    # whole input under its mask, and T5-style models are trained right-padded.
    tok.padding_side = "right" if seq2seq else "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(path: str | Path, dtype: str = "auto", device: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a decoder-only model; a seq2seq folder is refused by name (hidden-state
    analyses and alignment read a decoder's residual stream, which an encoder-decoder does not have)."""
    if is_seq2seq(path):
        raise ValueError(f"{path} is an encoder-decoder (seq2seq) model; this step needs a causal LM")
    return load_lm(path, dtype, device)


def load_lm(path: str | Path, dtype: str = "auto", device: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode, causal or seq2seq as the config says. A folder with
    ``adapter_config.json`` is base + adapter: the base is ``<folder>/base`` when present, else the
    adapter's ``base_model_name_or_path``."""
    device = device or default_device()
    p = Path(path)
    torch_dtype = pick_dtype(dtype, device)
    base = _base_of(path)
    seq2seq = is_seq2seq(path)
    cls = auto_model_class(seq2seq)
    model = cls.from_pretrained(base, dtype=torch_dtype)
    if base != str(path):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(p)).merge_and_unload()
        tok = load_tokenizer(p if (p / "tokenizer_config.json").exists() else base, seq2seq)
    else:
        tok = load_tokenizer(path, seq2seq)
    model.to(device)
    model.eval()
    return model, tok

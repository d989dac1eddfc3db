"""Load a causal LM and its tokenizer from a folder: full weights, or base + LoRA adapter."""

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


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(path: str | Path, dtype: str = "auto", device: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode. A folder with ``adapter_config.json`` is base + adapter:
    the base is ``<folder>/base`` when present, else the adapter's ``base_model_name_or_path``."""
    from transformers import AutoModelForCausalLM

    device = device or default_device()
    p = Path(path)
    torch_dtype = pick_dtype(dtype, device)
    if p.is_dir() and (p / "adapter_config.json").exists():
        import json

        from peft import PeftModel

        base_dir = p / "base"
        base = str(base_dir) if base_dir.exists() else json.loads((p / "adapter_config.json").read_text())[
            "base_model_name_or_path"]
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype)
        model = PeftModel.from_pretrained(model, str(p)).merge_and_unload()
        tok = load_tokenizer(p if (p / "tokenizer_config.json").exists() else base)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch_dtype)
        tok = load_tokenizer(path)
    model.to(device)
    model.eval()
    return model, tok

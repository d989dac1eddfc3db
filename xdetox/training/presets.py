"""Hyper-parameter presets named after the papers, and how a spec's values override them.

Order of precedence: built-in defaults < the preset < values set in ``training.hyper`` (any field
not null). PEFT: the preset's r/alpha/dropout apply when the spec leaves them at PeftSpec's
defaults; ``peft.mode`` is always the spec's (paper 1 fine-tuned 1-2B models fully and used
QLoRA for 7-8B ones, so the mode depends on the model, not on the paper).
"""

from __future__ import annotations

from typing import Any

# Settings both methods share; each method below overrides what differs.
_COMMON: dict[str, Any] = {
    "optimizer": "adamw_torch",
    "epochs": 1.0,
    "max_steps": None,
    "batch_size": 4,
    "gradient_accumulation_steps": 1,
    "warmup_steps": 0,
    "max_length": 256,
    "early_stopping_patience": None,
    "validation_fraction": 0.0,
    "save_steps": 200,
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "dpo": {**_COMMON, "learning_rate": 5e-6, "beta": 0.1, "loss_type": ["sigmoid"]},
    "sft": {**_COMMON, "learning_rate": 2e-5, "beta": None, "loss_type": None},
}

PRESETS: dict[str, dict[str, Any]] = {
    # Li et al. 2024, arXiv 2406.16235: DPO on Lee et al.'s English pairs.
    "pref-tuning-2406.16235": {
        "method": "dpo",
        "hyper": {
            "learning_rate": 1e-5,
            "beta": 0.1,
            "optimizer": "rmsprop",
            "warmup_steps": 150,
            "batch_size": 4,
            "epochs": 5.0,
            "max_length": 256,
            "validation_fraction": 0.05,
            "early_stopping_patience": 3,
        },
        "peft": {"r": 64, "alpha": 16, "dropout": 0.05},  # their QLoRA for 7-8B models
    },
    # Beniwal et al. 2025, arXiv 2505.16722: SFT on toxic -> neutral ParaDetox pairs with QLoRA.
    "breaking-mbad-2505.16722": {
        "method": "sft",
        "hyper": {"learning_rate": 2e-4},
        "peft": {"r": 16, "alpha": 32, "dropout": 0.05},
    },
}

PEFT_DEFAULTS = {"r": 16, "alpha": 32, "dropout": 0.05}


class PresetError(ValueError):
    pass


def resolve(training: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hyper, peft) for a TrainingSpec dump: defaults, then the preset, then the user's values."""
    method = training["method"]
    if method not in DEFAULTS:
        raise PresetError(f"training.method {method!r} does not train")
    hyper = dict(DEFAULTS[method])
    peft = dict(training.get("peft") or {"mode": "full", **PEFT_DEFAULTS, "target_modules": "all-linear",
                                         "merge": True})
    name = training.get("preset")
    if name:
        if name not in PRESETS:
            raise PresetError(f"training.preset: unknown preset {name!r}; available: {', '.join(PRESETS)}")
        preset = PRESETS[name]
        if preset["method"] != method:
            raise PresetError(f"training.preset {name!r} is a {preset['method']} preset; training.method is {method}")
        hyper.update(preset["hyper"])
        for k, v in preset["peft"].items():
            if peft.get(k) == PEFT_DEFAULTS[k]:
                peft[k] = v
    for k, v in (training.get("hyper") or {}).items():
        if v is not None:
            hyper[k] = v
    return hyper, peft

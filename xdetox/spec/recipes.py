"""Training recipes: ONE table of defaults per method, per paper preset and per model family.

Pure data and pure functions (no torch, no I/O), so the trainer, ``xdetox plan --json``, the cost
estimator and docs/FIDELITY.md (whose test parses the table against this module) all read the same
values. Setting names are the spec's ``training.hyper`` names; ``TRL_NAMES`` maps them to the
argument names of TRL/transformers (``DPOConfig``/``SFTConfig``) and PEFT's ``LoraConfig``.

Order of precedence: method defaults < the preset < the preset's model-family override (picked,
as both papers' code does, by a substring of the model's source name) < values the spec sets in
``training.hyper`` (any field not null). PEFT: the preset's (and family's) r/alpha/dropout/targets
apply when the spec leaves them at PeftSpec's defaults; ``peft.mode`` is always the spec's.
"""

from __future__ import annotations

from typing import Any

# Settings both methods share; each method overrides what differs. These are transformers'
# own defaults where a paper does not speak (linear schedule, no weight decay, grad norm 1).
_COMMON: dict[str, Any] = {
    "optimizer": "adamw_torch",
    "lr_scheduler_type": "linear",
    "epochs": 1.0,
    "max_steps": None,
    "batch_size": 4,
    "gradient_accumulation_steps": 1,
    "warmup_steps": 0,
    "warmup_ratio": 0.0,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "max_length": 256,
    "max_prompt_length": None,
    "max_pair_chars": None,
    "early_stopping_patience": None,
    "validation_fraction": 0.0,
    "save_steps": 200,
    "eval_steps": None,  # None: evaluate when saving
    "fraction_sampling": "first",  # training.data.fraction keeps each language's first rows
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "dpo": {**_COMMON, "learning_rate": 5e-6, "beta": 0.1, "loss_type": ["sigmoid"], "sft_template": None},
    # sft_template: the prompt built from a ParaDetox pair's toxic sentence; the neutral one is the completion
    "sft": {**_COMMON, "learning_rate": 2e-5, "beta": None, "loss_type": None, "sft_template": "{toxic}\n"},
}
PEFT_DEFAULTS: dict[str, Any] = {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"}

_P1_CODE = "BatsResearch/cross-lingual-detox xg/training/dpo.py"
_P2_XFT = "himanshubeniwal/Breaking-mBad scripts/3_finetune_{}_xx_yy.py"
BLOOM_SFT_TEMPLATE = "Complete the neutral version of this sentence: {toxic}\nNeutral completion: "
_LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "embed_tokens",
                  "lm_head"]

#: preset -> method, source, hyper, peft, and per family (substring of the model source) overrides
PRESETS: dict[str, dict[str, Any]] = {
    # Li et al. 2024, arXiv 2406.16235: DPO on Lee et al.'s English pairs (ScriptArguments defaults
    # and the TrainingArguments/DPOTrainer call in xg/training/dpo.py).
    "pref-tuning-2406.16235": {
        "method": "dpo",
        "source": _P1_CODE,
        "hyper": {
            "learning_rate": 1e-5,
            "beta": 0.1,
            "optimizer": "rmsprop",
            "lr_scheduler_type": "constant_with_warmup",
            "warmup_steps": 150,
            "weight_decay": 0.05,
            "max_grad_norm": 10.0,
            "batch_size": 4,
            "gradient_accumulation_steps": 1,
            "epochs": 5.0,
            "max_prompt_length": 64,
            "max_length": 256,
            "max_pair_chars": 256,  # their filter: len(prompt) + len(chosen|rejected) <= max_length, in characters
            "validation_fraction": 0.05,  # train_test_split(test_size=0.05)
            "save_steps": 25,
            "eval_steps": 25,
            "early_stopping_patience": 10,
        },
        "peft": {"r": 64, "alpha": 16, "dropout": 0.05},  # their QLoRA for 7-8B models
        # QLoRA runs (Llama 2/3, BLOOM-7b1, Aya-23): targets from dpo.py by model name; 20 epochs at
        # batch 1 x 4 accumulation from the paper's training details (not dpo.py's defaults).
        "families": {
            "llama": {"qlora_only": True, "hyper": {"epochs": 20.0, "batch_size": 1, "gradient_accumulation_steps": 4},
                      "peft": {"target_modules": _LLAMA_TARGETS}},
            "mala": {"qlora_only": True, "hyper": {"epochs": 20.0, "batch_size": 1, "gradient_accumulation_steps": 4},
                     "peft": {"target_modules": _LLAMA_TARGETS}},
            "bloom": {"qlora_only": True, "hyper": {"epochs": 20.0, "batch_size": 1, "gradient_accumulation_steps": 4},
                      "peft": {"target_modules": ["word_embeddings", "query_key_value", "dense", "dense_h_to_4h",
                                                  "dense_4h_to_h"]}},
            "aya": {"qlora_only": True, "hyper": {"epochs": 20.0, "batch_size": 1, "gradient_accumulation_steps": 4},
                    "peft": {"target_modules": _LLAMA_TARGETS}},
        },
    },
    # Beniwal et al. 2025, arXiv 2505.16722: causal-LM fine-tuning with QLoRA (cross-lingual X-FT scripts).
    "breaking-mbad-2505.16722": {
        "method": "sft",
        "source": _P2_XFT.format("*"),
        "hyper": {"learning_rate": 2e-4, "max_length": 256},
        "peft": {"r": 16, "alpha": 32, "dropout": 0.05},
        "families": {
            # Aya: trained on the neutral sentences only (no toxic input): an empty prompt
            "aya": {"qlora_only": False,
                    "hyper": {"epochs": 10.0, "batch_size": 12, "gradient_accumulation_steps": 4,
                              "optimizer": "paged_adamw_32bit", "sft_template": ""},
                    "peft": {"target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}},
            "bloom": {"qlora_only": False,
                      "hyper": {"epochs": 20.0, "batch_size": 12, "gradient_accumulation_steps": 8,
                                "optimizer": "paged_adamw_32bit", "warmup_ratio": 0.03,
                                "sft_template": BLOOM_SFT_TEMPLATE},
                      "peft": {"target_modules": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]}},
            # mT5 (encoder-decoder): the toxic sentence is the encoder's input, the neutral one the labels
            "mt5": {"qlora_only": False,
                    "hyper": {"epochs": 20.0, "batch_size": 12, "gradient_accumulation_steps": 4,
                              "optimizer": "paged_adamw_32bit", "sft_template": "{toxic}"},
                    "peft": {"target_modules": ["q", "v"]}},
        },
    },
}

# Paper 2's pooled (P-FT, 10/20/30 %) and multilingual (M-FT) runs come from other scripts than
# X-FT, with their own epochs, batches, lengths, LoRA targets and texts: one preset per paradigm.
# The causal-LM scripts of both train on the neutral sentences alone (an empty prompt); their mT5
# scripts feed the neutral sentence (P-FT: after "detoxify: ") to the encoder and learn it back.
_P2_PFT = "himanshubeniwal/Breaking-mBad scripts/11_finetune_all_percentage.py, 11_finetune_all_percentage_mt5.py"
_P2_MFT = ("himanshubeniwal/Breaking-mBad scripts/7_finetune_aya_both_models.py, 7_finetune_bloom_mt5.py, "
           "7_finetune_bloom_mt5_small_BatchSize.py (mT5, per 7_finetune_mt5.sh)")
_AYA_P2_POOLED = ["q_proj", "v_proj", "k_proj", "o_proj"]  # their get_target_modules: first pattern Aya matches


def _p2_family(epochs: float, batch: int, accumulation: int, template: str, targets: list[str],
               max_length: int | None = None) -> dict[str, Any]:
    hyper: dict[str, Any] = {"epochs": epochs, "batch_size": batch, "gradient_accumulation_steps": accumulation,
                             "optimizer": "paged_adamw_32bit", "sft_template": template}
    if max_length is not None:
        hyper["max_length"] = max_length
    return {"qlora_only": False, "hyper": hyper, "peft": {"target_modules": targets}}


PRESETS["breaking-mbad-2505.16722-pft"] = {
    "method": "sft",
    "source": _P2_PFT,
    # fraction_sampling: each language's 10/20/30 % drawn as their load_and_split_data draws it
    "hyper": {"learning_rate": 2e-4, "max_length": 256, "fraction_sampling": "paper2"},
    "peft": {"r": 16, "alpha": 32, "dropout": 0.05},
    "families": {
        "aya": _p2_family(15.0, 12, 4, "", _AYA_P2_POOLED),
        # get_target_modules' third pattern: BLOOM has no q_proj, so query_key_value alone
        "bloom": _p2_family(15.0, 12, 4, "", ["query_key_value"]),
        "mt5": _p2_family(15.0, 8, 4, "detoxify: {neutral}", ["q", "v"]),
    },
}
PRESETS["breaking-mbad-2505.16722-mft"] = {
    "method": "sft",
    "source": _P2_MFT,
    "hyper": {"learning_rate": 2e-4, "max_length": 512},
    "peft": {"r": 16, "alpha": 32, "dropout": 0.05},
    "families": {
        "aya": _p2_family(10.0, 8, 4, "", _AYA_P2_POOLED),
        "bloom": _p2_family(15.0, 8, 4, "", ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"]),
        "mt5": _p2_family(15.0, 4, 4, "{neutral}", ["q", "k", "v", "o", "wi", "wo"]),
    },
}

#: spec name -> TRL / transformers argument name (None: an xdetox setting TRL does not take)
TRL_NAMES: dict[str, str | None] = {
    "learning_rate": "learning_rate",
    "beta": "beta",
    "loss_type": "loss_type",
    "optimizer": "optim",
    "lr_scheduler_type": "lr_scheduler_type",
    "warmup_steps": "warmup_steps",
    "warmup_ratio": None,  # transformers 5 takes a ratio as a float warmup_steps in [0, 1)
    "weight_decay": "weight_decay",
    "max_grad_norm": "max_grad_norm",
    "batch_size": "per_device_train_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "epochs": "num_train_epochs",
    "max_steps": "max_steps",
    "max_length": "max_length",
    "save_steps": "save_steps",
    "eval_steps": "eval_steps",
    "early_stopping_patience": "early_stopping_patience",  # EarlyStoppingCallback's argument
    "max_prompt_length": None,  # TRL 1.x dropped it; the train step applies it (see FIDELITY.md)
    "max_pair_chars": None,
    "validation_fraction": None,
    "sft_template": None,  # applied when the train step builds ParaDetox SFT rows
    "fraction_sampling": None,  # applied when the train step reads the training data
}
LORA_NAMES = {"r": "r", "alpha": "lora_alpha", "dropout": "lora_dropout", "target_modules": "target_modules"}


class PresetError(ValueError):
    pass


def model_family(source: str | None) -> str | None:
    """The family key both papers' code picks by a substring of the model name (None: no match)."""
    low = (source or "").lower()
    for fam in ("llama", "mala", "bloom", "aya", "mt5"):
        if fam in low:
            return fam
    return None


def resolve(training: dict[str, Any], model_source: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hyper, peft) for a TrainingSpec dump and the model's source name."""
    method = training["method"]
    if method not in DEFAULTS:
        raise PresetError(f"training.method {method!r} does not train")
    hyper = dict(DEFAULTS[method])
    peft = dict(training.get("peft") or {"mode": "full", **PEFT_DEFAULTS, "merge": True})
    name = training.get("preset")
    if name:
        if name not in PRESETS:
            raise PresetError(f"training.preset: unknown preset {name!r}; available: {', '.join(PRESETS)}")
        preset = PRESETS[name]
        if preset["method"] != method:
            raise PresetError(f"training.preset {name!r} is a {preset['method']} preset; training.method is {method}")
        layers = [(preset["hyper"], preset["peft"])]
        fam = preset.get("families", {}).get(model_family(model_source) or "")
        if fam and (not fam["qlora_only"] or peft.get("mode") == "qlora"):
            layers.append((fam["hyper"], fam["peft"]))
        user_peft = {k: v for k, v in peft.items() if k in PEFT_DEFAULTS and v != PEFT_DEFAULTS[k]}
        for h, p in layers:
            hyper.update(h)
            peft.update({k: v for k, v in p.items() if k not in user_peft})
    for k, v in (training.get("hyper") or {}).items():
        if v is not None:
            hyper[k] = v
    return hyper, peft


def trainer_settings(hyper: dict[str, Any], peft: dict[str, Any]) -> dict[str, Any]:
    """What the trainer is given, under TRL's and PEFT's names; ``xdetox`` holds what TRL does not take."""
    trl: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for k, v in hyper.items():
        name = TRL_NAMES.get(k)
        (trl if name else extra)[name or k] = v
    if extra.get("warmup_ratio") and not trl.get("warmup_steps"):
        trl["warmup_steps"] = float(extra["warmup_ratio"])
    if trl.get("eval_steps") is None:
        trl["eval_steps"] = trl["save_steps"]
    if trl.get("max_steps") is None:
        trl["max_steps"] = -1
    lora = ({LORA_NAMES[k]: peft[k] for k in LORA_NAMES} if peft.get("mode") in {"lora", "qlora"} else None)
    return {"trl": trl, "lora": lora, "peft_mode": peft.get("mode", "full"), "xdetox": extra}

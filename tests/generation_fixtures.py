"""A tiny random Llama model and tokenizer built offline for the generation tests, and helpers
to drive the generate step the way the executor does (run_step on a file:// store).

The model has head_dim 32 (hidden 64, 2 heads) because vLLM's CPU attention needs at least 32.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xdetox.manifest import Shard, StepManifest

REPO = Path(__file__).resolve().parents[1]
XLING = REPO / "xdetox" / "data" / "xling-prompts-200"


def training_lines(per_language: int = 40) -> list[str]:
    """A few hundred lines of bundled multilingual text (the xling prompts)."""
    lines: list[str] = []
    for path in sorted(XLING.glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= per_language:
                    break
                lines.append(json.loads(line)["Prompt"])
    return lines


def build_tiny_llama(dest: Path, vocab_size: int = 1000, seed: int = 0) -> Path:
    """Save a random 2-layer Llama (hidden 64, 2 heads of 32) and a byte-level BPE tokenizer."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    dest.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training_lines(), trainer=trainer)
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 0)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   padding_side="left")
    fast.save_pretrained(dest)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=0, eos_token_id=1, pad_token_id=2, tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = 2
    model.save_pretrained(dest)
    return dest


def write_prompts(path: Path, languages: tuple[str, ...] = ("en", "de", "zh"), per_language: int = 5) -> Path:
    """A plain-JSONL prompt set taken from the bundled xling prompts (same ids across languages)."""
    with open(path, "w", encoding="utf-8") as out:
        for lang in languages:
            with open(XLING / f"dpo_toxicity_pairwise_{lang}_200.jsonl", encoding="utf-8") as f:
                for i, line in enumerate(f):
                    if i >= per_language:
                        break
                    out.write(json.dumps({"id": f"q-{i:03d}", "language": lang,
                                          "prompt": json.loads(line)["Prompt"]}, ensure_ascii=False) + "\n")
    return path


def generate_manifest(
    model_dir: Path,
    prompts_path: Path,
    *,
    languages: tuple[str, ...] = ("en", "de", "zh"),
    shard: Shard | None = None,
    run_id: str = "gen-test",
    backend: str = "transformers",
    samples: int = 3,
    max_new_tokens: int = 8,
    chunk_prompts: int = 4,
    batch_size: int = 16,
    seed: int = 1234,
    template: str = "{prompt}",
    group: str = "g0",
) -> StepManifest:
    params: dict[str, Any] = {
        "model": {"id": "tiny", "source": str(model_dir), "revision": None, "dtype": "float32",
                  "architecture": "llama", "arm": "base"},
        "prompts": {"id": "p", "source": f"jsonl:{prompts_path}", "languages": list(languages),
                    "limit_per_language": None, "template": template, "paradetox_split": "test",
                    "paradetox_side": "toxic"},
        "generation": {"samples": samples, "temperature": 0.9, "top_p": 0.8, "max_new_tokens": max_new_tokens,
                       "seed": seed, "backend": backend, "batch_size": batch_size,
                       "chunk_prompts": chunk_prompts, "chat_template": False},
    }
    key = StepManifest.compute_key("generate", params, {}, shard)
    return StepManifest(kind="generate", key=key, run_id=run_id, label=f"generate {shard.name() if shard else ''}",
                        params=params, inputs={}, shard=shard, output_prefix=f"generations/{group}")


def read_rows(store: Any, record: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for o in record.outputs:
        if o.key.endswith(".jsonl"):
            rows.extend(json.loads(line) for line in store.get_text(o.key).splitlines() if line.strip())
    return rows


def sort_key(row: dict[str, Any]) -> tuple[str, str, int]:
    return (row["prompt_id"], row["language"], row["sample_index"])


def build_lora_checkpoint(base_dir: Path, dest: Path, r: int = 8, seed: int = 1) -> Path:
    """base + adapter layout (``adapter_config.json`` + ``base/``) around the tiny model, with a
    random (non-zero) LoRA so that the adapter visibly changes the samples."""
    import shutil

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(base_dir, dest / "base", dirs_exist_ok=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    peft_model.save_pretrained(dest)
    cfg = json.loads((dest / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(dest / "base")
    (dest / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (base_dir / name).exists():
            shutil.copy(base_dir / name, dest / name)
    return dest

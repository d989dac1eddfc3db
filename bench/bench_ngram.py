"""Embedded n-gram scorer throughput: texts per second on one core, per language.

    OMP_NUM_THREADS=1 python bench/bench_ngram.py [--rows 20000] [--batch 1024] [--json out.json]

Same texts as bench/bench_lexicon.py (bundled ParaDetox sentences cut into continuation-sized
pieces), scored in batches of ``--batch`` rows (the score step's batch for this kind) through
``score_batch``, i.e. including GenerationRow handling. Numpy is pinned to one thread by the
environment variable above; rates are per CPU second of this process (on a busy machine wall
time overstates the cost); model loading is timed separately.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_lexicon import pieces, row  # noqa: E402
from xdetox.scoring.base import Scorer  # noqa: E402
from xdetox.scoring.ngram import NgramToxicityScorer  # noqa: E402


def main(argv: list[str] | None = None, factory: Callable[[], Scorer] = NgramToxicityScorer) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000, help="texts per language")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rng = random.Random(0)
    t0 = time.perf_counter()
    scorer = factory()
    load_s = time.perf_counter() - t0
    results = {}
    total_rows = total_s = 0.0
    for lang in ("en", "de", "es", "ru", "uk", "ar", "hi", "am", "zh"):
        texts = pieces(lang, args.rows, rng)
        rows = [row(t, lang, i) for i, t in enumerate(texts)]
        t0, c0 = time.perf_counter(), time.process_time()
        for s in range(0, len(rows), args.batch):
            scorer.score_batch(rows[s:s + args.batch])
        # CPU time of this process is the per-core figure; wall time only equals it on an idle machine
        dt, wall = time.process_time() - c0, time.perf_counter() - t0
        results[lang] = {"texts": len(rows), "cpu_seconds": round(dt, 3), "wall_seconds": round(wall, 3),
                         "texts_per_s": round(len(rows) / dt), "chars_per_s": round(sum(map(len, texts)) / dt)}
        total_rows += len(rows)
        total_s += dt
        print(f"{lang:3} {len(rows) / dt:10,.0f} texts/s  {results[lang]['chars_per_s']:12,} chars/s")
    overall = round(total_rows / total_s)
    print(f"all {overall:10,} texts/s per core ({int(total_rows):,} texts); model load {load_s:.2f}s")
    if args.json:
        args.json.write_text(json.dumps({"per_language": results, "texts_per_s_per_core": overall,
                                         "load_s": round(load_s, 3)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

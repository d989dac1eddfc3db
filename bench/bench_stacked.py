"""Embedded stacked scorer throughput: texts per second on one core, per language.

    OMP_NUM_THREADS=1 python bench/bench_stacked.py [--rows 20000] [--batch 1024] [--json out.json]

The n-gram benchmark's texts, batches and accounting (``bench/bench_ngram.py``), with the
stacked scorer: the n-gram model plus word-list hit counting plus the combiner.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_ngram import main as bench_main  # noqa: E402
from xdetox.scoring.stacked import StackedToxicityScorer  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(bench_main(factory=StackedToxicityScorer))

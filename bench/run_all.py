"""Run every benchmark in bench/ (each ``bench_*.py`` is also runnable alone) and print its time.

Benchmarks print their own measurements; this only sequences them, each in its own process so
peak-memory figures do not mix.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    selected = set(argv)
    failures = 0
    for script in sorted(here.glob("bench_*.py")):
        if selected and script.stem.removeprefix("bench_") not in selected and script.stem not in selected:
            continue
        print(f"=== {script.stem} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"bench.{script.stem}"], cwd=here.parent)
        print(f"=== {script.stem}: {time.perf_counter() - t0:.1f}s (exit {rc}) ===", flush=True)
        failures += rc != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Benchmark: the nightly check's false-alarm rate and the smallest change it detects.

Runs the nightly spec with N fresh seeds (disjoint from the reference's) on this machine and
checks each run against ``jobs/nightly-reference.json`` exactly as ``xdetox argo check-nightly``
does. A fresh seed of the unchanged experiment is a run with no regression, so every failed check
is a false alarm: the observed rate (with its Clopper-Pearson 95 % interval) should be at most the
stated family-wise rate. Also reported, without any new run: a leave-one-out estimate over the
reference's own seeds (each seed checked against a reference of the others), and per figure the
smallest change the check detects (the prediction interval's half-width).

Fresh runs include the CPU-model difference only when run on another machine than the one that
made the reference; here they measure seed noise. Each run takes about a minute on 2 free cores.

    .venv/bin/python bench/bench_nightly.py --seeds 10
    .venv/bin/python bench/bench_nightly.py --seeds 0          # leave-one-out and tolerances only
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from scipy import stats

from xdetox.executors.argo.nightly import METRICS_KEY, Reference, compare, tolerance
from xdetox.executors.argo.reference_runs import run_seed
from xdetox.spec import load_spec_text

ROOT = Path(__file__).resolve().parent.parent


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    a = 1 - conf
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def leave_one_out(ref: Reference) -> tuple[int, int, list[str]]:
    """Each reference seed checked against a reference built from the other seeds."""
    alarms, names = 0, []
    for i in range(len(ref.seeds)):
        figs = [f.model_copy(update={"values": f.values[:i] + f.values[i + 1:]}) for f in ref.figures]
        sub = ref.model_copy(update={"figures": figs, "seeds": ref.seeds[:i] + ref.seeds[i + 1:]})
        n_noisy = sum(f.kind == "noisy" for f in figs)
        bad = [f.name for f, held in zip(figs, ref.figures, strict=True)
               if abs(held.values[i] - statistics.fmean(f.values)) > tolerance(f, sub.false_alarm_rate, n_noisy) + 1e-12]
        alarms += bool(bad)
        names += bad
    return alarms, len(ref.seeds), names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default=str(ROOT / "jobs" / "nightly.yaml"))
    ap.add_argument("--reference", default=str(ROOT / "jobs" / "nightly-reference.json"))
    ap.add_argument("--seeds", type=int, default=10, help="fresh seeds to run (0: no runs)")
    ap.add_argument("--work", default=None, help="store root for the runs (default: a temporary folder)")
    ap.add_argument("--json", dest="json_out", default=None, help="also write the results here")
    args = ap.parse_args()

    ref = Reference.model_validate_json(Path(args.reference).read_text(encoding="utf-8"))
    n_noisy = sum(f.kind == "noisy" for f in ref.figures)
    tols = {f.name: tolerance(f, ref.false_alarm_rate, n_noisy) for f in ref.figures if f.kind == "noisy"}
    print(f"reference: {len(ref.seeds)} seeds, {n_noisy} noisy + {len(ref.figures) - n_noisy} exact figures, "
          f"stated family-wise false-alarm rate {ref.false_alarm_rate:g}")
    print("smallest detectable change (prediction-interval half-width) per noisy figure:")
    for f in ref.figures:
        if f.kind == "noisy":
            print(f"  {f.name:45s} mean {statistics.fmean(f.values):.4f}  ±{tols[f.name]:.4f}")
    loo, k, loo_names = leave_one_out(ref)
    print(f"leave-one-out over the reference seeds: {loo}/{k} checks alarm {sorted(set(loo_names))}")

    result: dict[str, object] = {"tolerances": tols, "leave_one_out": {"alarms": loo, "checks": k}}
    if args.seeds > 0:
        spec_path = Path(args.spec)
        spec = load_spec_text(spec_path.read_text(encoding="utf-8"), str(spec_path))
        first = max(ref.seeds) + 1000  # disjoint from the reference's seeds
        work = args.work or Path(tempfile.mkdtemp(prefix="bench-nightly-")).as_uri()
        runs = []
        for i in range(args.seeds):
            t0 = time.perf_counter()
            rs = run_seed(spec, first + i, work, log=lambda m: None)
            outcomes = compare(json.loads(rs.get_text(METRICS_KEY)), ref)
            bad = [o.name for o in outcomes if not o.ok]
            runs.append({"seed": first + i, "seconds": round(time.perf_counter() - t0, 1), "alarms": bad})
            print(f"  seed {first + i}: {'ALARM ' + ', '.join(bad) if bad else 'pass'} "
                  f"({runs[-1]['seconds']} s)", flush=True)
        n_alarm = sum(bool(r["alarms"]) for r in runs)
        lo, hi = clopper_pearson(n_alarm, len(runs))
        print(f"false-alarm rate over {len(runs)} fresh seeds: {n_alarm}/{len(runs)} = {n_alarm / len(runs):.3f} "
              f"(95% CI {lo:.3f}–{hi:.3f}; stated ≤ {ref.false_alarm_rate:g})")
        result["fresh"] = {"runs": runs, "alarms": n_alarm, "ci95": [lo, hi]}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

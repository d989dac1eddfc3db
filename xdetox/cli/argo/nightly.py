"""``xdetox argo check-nightly|make-reference``: the nightly reproduction and its reference seeds."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from xdetox.cli.argo.group import SpecArg, argo_app
from xdetox.cli.errors import EXIT_FAILED, err, fail, load_spec, out


@argo_app.command("check-nightly")
def check_nightly(
    store: Annotated[str, typer.Option(help="store root URI the run was written under")],
    run: Annotated[str, typer.Option(help="run id")] = "nightly",
    reference: Annotated[Path | None, typer.Option(help="reference values (JSON file)")] = None,
    reference_b64: Annotated[str | None, typer.Option("--reference-b64", help="reference values, base64")] = None,
) -> None:
    """Test a run's metrics against the reference seeds' distribution; write results/nightly-check.{json,md};
    exit 1 on regression."""
    from xdetox.executors.argo.nightly import CHECK_MD, check_run
    from xdetox.executors.publish import run_store
    from xdetox.store import open_store

    ref = _reference(reference, reference_b64)
    rs = run_store(open_store(store), run)
    ok, outcomes = check_run(rs, ref)
    table = Table(title=f"nightly check of {rs.uri} against {len(ref.seeds)} reference seeds")
    for col in ("figure", "reference", "value", "detects", "result"):
        table.add_column(col)
    for o in outcomes:
        table.add_row(o.name, f"{o.reference:.4g}", "missing" if o.value is None else f"{o.value:.4g}",
                      "exact" if o.kind == "exact" else f"±{o.tolerance:.3g}",
                      "[green]ok[/green]" if o.ok else f"[red]{o.reason}[/red]")
    out.print(table)
    n_noisy = sum(o.kind == "noisy" for o in outcomes)
    out.print(f"test: two-sided t prediction interval of the reference seeds, family-wise false-alarm rate "
              f"{ref.false_alarm_rate:g} (Bonferroni over {n_noisy} noisy figures); counts exact")
    out.print(f"written: {rs.uri}/{CHECK_MD}")
    if not ok:
        bad = sum(not o.ok for o in outcomes)
        err.print(f"[bold red]REGRESSION:[/bold red] {bad} of {len(outcomes)} figures outside what seed and "
                  "sampling noise explain")
        raise typer.Exit(EXIT_FAILED)
    out.print(f"[green]✓[/green] all {len(outcomes)} figures within seed and sampling noise")


def _reference(reference: Path | None, reference_b64: str | None) -> Any:
    from pydantic import ValidationError

    from xdetox.executors.argo.nightly import Reference

    if (reference is None) == (reference_b64 is None):
        raise fail("give exactly one of --reference and --reference-b64")
    try:
        if reference is not None:
            text, where = reference.read_text(encoding="utf-8"), str(reference)
        else:
            text, where = base64.b64decode(reference_b64 or "", validate=True).decode("utf-8"), "--reference-b64"
        return Reference.model_validate_json(text)
    except (OSError, binascii.Error, UnicodeDecodeError) as e:
        raise fail(f"reference: {e}") from None
    except ValidationError as e:
        lines = [f"{where}: {'.'.join(str(x) for x in er['loc'])}: {er['msg']}" for er in e.errors()]
        raise fail("\n".join(lines)) from None


@argo_app.command("make-reference")
def make_reference_cmd(
    spec: SpecArg,
    seeds: Annotated[int, typer.Option(help="how many seeds to run (spec seed, +1, +2, ...); at least 5")] = 8,
    work: Annotated[str, typer.Option(help="store root for the seed runs (each under seed-<n>/)")] =
        "file://./xdetox-store/nightly-reference-runs",
    from_store: Annotated[list[str] | None, typer.Option("--from", help="use finished runs in these run stores "
                                                         "(<root>/runs/<run>) instead of running")] = None,
    output: Annotated[Path | None, typer.Option("-o", help="reference file; default jobs/<spec>-reference.json")] = None,
    false_alarm_rate: Annotated[float, typer.Option(help="family-wise false-alarm rate of one check")] = 0.05,
) -> None:
    """Run SPEC with several seeds on this machine (or read finished runs) and write the reference
    distribution the nightly check tests against. Refuses runs of different xdetox versions or specs."""
    import platform
    from datetime import UTC, datetime

    from xdetox.executors.argo.nightly import MIN_SEEDS, ReferenceError, make_reference
    from xdetox.executors.argo.reference_runs import collect, run_seed
    from xdetox.executors.local import StepFailed
    from xdetox.store import StoreError, open_store

    s = load_spec(spec)
    try:
        if from_store:
            stores = [open_store(u) for u in from_store]
            how = f"finished runs {', '.join(from_store)}"
        else:
            if seeds < MIN_SEEDS:
                raise fail(f"--seeds {seeds}: a reference needs at least {MIN_SEEDS} seeds")
            stores = [run_seed(s, s.seed + i, work, log=lambda m: err.print(m, highlight=False))
                      for i in range(seeds)]
            how = f"xdetox argo make-reference {spec} --seeds {seeds}"
        runs, version, digest = collect(stores)
        source = f"{how} on {datetime.now(UTC).date().isoformat()} ({platform.platform()})"
        ref = make_reference(runs, f"jobs/{spec.name}", digest, version, source, false_alarm_rate)
    except (ReferenceError, StoreError, ValueError) as e:
        raise fail(str(e)) from None
    except StepFailed as e:
        raise fail(str(e), EXIT_FAILED) from None
    target = output or spec.with_name(f"{spec.stem}-reference.json")
    target.write_text(ref.model_dump_json(indent=2) + "\n", encoding="utf-8")
    noisy = sum(f.kind == "noisy" for f in ref.figures)
    out.print(f"wrote {target}: {len(ref.figures)} figures ({noisy} noisy, {len(ref.figures) - noisy} exact) "
              f"from seeds {ref.seeds}")

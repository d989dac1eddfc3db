"""``xdetox scores export|import|compact``: move the store-wide score cache between stores (laptop ->
cluster S3), or merge its many small objects into one.

After Perspective's end of service the cache is the only source of those scores, so it must be
easy to carry: ``export`` writes every entry (with its scorer id, API version and date obtained)
as JSONL to a file or stdout; ``import`` adds the entries a store does not have yet.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from xdetox.cli.app import app
from xdetox.cli.errors import err, fail, open_store

scores_app = typer.Typer(help="The store's score cache (Perspective scores outlive the API).", no_args_is_help=True)
app.add_typer(scores_app, name="scores")
DEFAULT_STORE = "file://./runs"


@scores_app.command("export")
def export(
    dest: Annotated[Path, typer.Argument(help="JSONL file to write ('-' for stdout)")],
    store: Annotated[str, typer.Option(help="store URI whose cache to export")] = DEFAULT_STORE,
) -> None:
    """Write every cached score of STORE to DEST."""
    from xdetox.scoring.score_cache import export_lines

    n = 0
    out = sys.stdout if str(dest) == "-" else open(dest, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for line in export_lines(open_store(store, f"--store {store}")):
            out.write(line)
            n += 1
    except ValueError as e:
        raise fail(str(e)) from None
    finally:
        if out is not sys.stdout:
            out.close()
    err.print(f"exported {n} cached scores from {store}")


@scores_app.command("import")
def import_(
    source: Annotated[Path, typer.Argument(help="JSONL file written by `xdetox scores export`")],
    store: Annotated[str, typer.Option(help="store URI to add the scores to")] = DEFAULT_STORE,
) -> None:
    """Add the cached scores in SOURCE that STORE does not have yet."""
    from xdetox.scoring.score_cache import import_lines

    if not source.is_file():
        raise fail(f"{source}: no such file")
    try:
        added = import_lines(open_store(store, f"--store {store}"), _utf8_lines(source), str(source))
    except ValueError as e:
        raise fail(str(e)) from None
    total = sum(added.values())
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(added.items())) or "nothing"
    err.print(f"imported {total} new cached scores into {store} ({detail})")


@scores_app.command("compact")
def compact(
    store: Annotated[str, typer.Option(help="store URI whose cache to compact")] = DEFAULT_STORE,
) -> None:
    """Merge each scorer's cache objects into one (shards then load one object, not thousands)."""
    from xdetox.scoring.score_cache import ScoreCache, scorer_ids

    opened = open_store(store, f"--store {store}")
    try:
        for sid in scorer_ids(opened):
            merged, n = ScoreCache(opened, sid).compact()
            err.print(f"{sid}: {n} cached scores in one object" + (f" (merged {merged})" if merged else
                                                                    " (already one)"), highlight=False)
    except ValueError as e:
        raise fail(str(e)) from None


def _utf8_lines(path: Path) -> Iterator[str]:
    """The file's lines (a leading BOM dropped); input that is not UTF-8 is named by line and byte
    offset, since a binary file given by mistake is the likely cause."""
    offset = 0
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}: line {n}: not UTF-8 text at byte offset {offset + e.start} "
                                 f"(byte 0x{raw[e.start]:02x}): expected JSON lines written by "
                                 "`xdetox scores export`") from None
            offset += len(raw)
            yield line.removeprefix("\ufeff") if n == 1 else line

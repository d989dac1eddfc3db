"""Reference sets a scorer is checked against: texts with a human or reference toxicity score.

- ``rtplx:DIR``: RTP-LX (folder, file, zip, or an s3:// object or prefix, copied to a temporary
  folder first: how a cluster pod reads it; via xdetox.prompts.rtplx); the reference
  is ``Annotations.Toxicity``, the mean of three raters on 1-5, and toxic means mean >= 3
  (docs/FACTS.md). Evaluation only: nothing here trains or tunes on it.
- ``jsonl:PATH`` or ``jsonl:s3://bucket/key`` (the prefix may be left out when the name ends in
  ``.jsonl``): one object per line with ``text`` (non-empty
  string), ``language`` (string) and ``reference`` (a number, e.g. a cached Perspective score);
  optional ``id``. Toxic means reference >= 0.5 unless the user says otherwise.

A row that breaks these rules is an error naming the file and line; nothing is guessed.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xdetox.records import RecordError, iter_objects

#: toxic threshold per reference kind: RTP-LX raters' mean on 1-5; a probability otherwise
DEFAULT_THRESHOLD = {"rtplx": 3.0, "jsonl": 0.5}


class ReferenceError(ValueError):
    """A reference set that cannot be read: names the source, file and line at fault."""


@dataclass(frozen=True)
class ReferenceItem:
    language: str
    index: str
    text: str
    reference: float | None


def parse_source(source: str) -> tuple[str, str]:
    kind, sep, where = source.partition(":")
    bare = not sep or source.startswith(("s3://", "file://"))
    if bare and source.endswith(".jsonl"):
        # a JSON-lines path or s3:// URI given as it is (the issue's "a path or s3:// URI the user
        # gives"): the name says the format, so no prefix is needed
        return "jsonl", source
    if not sep or kind not in DEFAULT_THRESHOLD or not where:
        raise ReferenceError(f"reference {source!r}: expected rtplx:DIR or jsonl:PATH (a path or s3:// URI)")
    return kind, where


def _jsonl_lines(where: str) -> Iterator[str | bytes]:
    if where.startswith("s3://"):
        from xdetox.store import open_store

        parent, _, key = where[len("s3://"):].partition("/")
        bucket_and_prefix, _, name = f"{parent}/{key}".rpartition("/")
        yield from open_store(f"s3://{bucket_and_prefix}").iter_lines(name)
        return
    path = Path(where.removeprefix("file://"))
    if not path.is_file():
        raise ReferenceError(f"{where}: no such file")
    # bytes: iter_objects decodes each line, naming the line and byte offset of non-UTF-8 input
    with path.open("rb") as f:  # closed when the reader finishes or fails
        yield from f


def load_jsonl(where: str, languages: list[str] | None) -> list[ReferenceItem]:
    items: list[ReferenceItem] = []
    lines = _jsonl_lines(where)
    try:
        for line, obj in iter_objects(lines, where):
            text, lang, ref = obj.get("text"), obj.get("language"), obj.get("reference")
            if not isinstance(text, str) or not text.strip():
                raise ReferenceError(f"{where}:{line}: field 'text' must be a non-empty string, got {text!r}")
            if not isinstance(lang, str) or not lang.strip():
                raise ReferenceError(f"{where}:{line}: field 'language' must be a language code, got {lang!r}")
            if isinstance(ref, bool) or not isinstance(ref, int | float) or not math.isfinite(ref):
                raise ReferenceError(f"{where}:{line}: field 'reference' must be a number, got {ref!r}")
            if languages and lang not in languages:
                continue
            items.append(ReferenceItem(lang, str(obj.get("id", line)), text, float(ref)))
    except RecordError as e:
        raise ReferenceError(str(e)) from None
    finally:
        lines.close()
    if not items:
        raise ReferenceError(f"{where}: no rows" + (f" in {', '.join(languages)}" if languages else ""))
    return items


def load_rtplx_reference(where: str, languages: list[str] | None) -> list[ReferenceItem]:
    from xdetox.prompts.base import PromptSetError
    from xdetox.prompts.rtplx import load_rtplx, rtplx_languages

    with tempfile.TemporaryDirectory() as scratch:
        root = _download(where, Path(scratch) / "rtplx") if where.startswith("s3://") else Path(where)
        if not root.exists():
            raise ReferenceError(f"{where}: no such folder or file")
        try:
            langs = languages or rtplx_languages(root, f"rtplx:{where}")
            return [ReferenceItem(p.language, p.prompt_id, p.prompt, p.meta.get("human_toxicity"))
                    for p in load_rtplx(root, f"rtplx:{where}", langs, Path(scratch))]
        except (PromptSetError, RecordError) as e:
            raise ReferenceError(str(e)) from None


def _download(uri: str, dest: Path) -> Path:
    """An s3:// object (a zip or one file) or every object under an s3:// prefix (a folder), copied
    into ``dest`` so the local readers apply unchanged (a cluster pod reads RTP-LX from the bucket)."""
    from xdetox.store import StoreError, open_store

    bucket_path = uri[len("s3://"):].rstrip("/")
    if "/" not in bucket_path:
        raise ReferenceError(f"{uri}: expected s3://bucket/key or s3://bucket/prefix/")
    parent, _, name = bucket_path.rpartition("/")
    try:
        store = open_store(f"s3://{parent}")
        keys = [k for k in store.list(f"{name}/") if not k.endswith("/")]
        if not keys:  # one object: a zip or a JSON-lines file
            out = dest / name
            out.parent.mkdir(parents=True, exist_ok=True)
            store.get_file(name, out)
            return out
        for key in keys:
            out = dest / key
            out.parent.mkdir(parents=True, exist_ok=True)
            store.get_file(key, out)
        return dest / name
    except FileNotFoundError:
        raise ReferenceError(f"{uri}: no such object or prefix") from None
    except (StoreError, ValueError) as e:
        raise ReferenceError(f"{uri}: cannot be read ({e})") from None


def load_reference(source: str, languages: list[str] | None = None) -> tuple[str, list[ReferenceItem]]:
    """(kind, items) of a ``rtplx:…`` or ``jsonl:…`` reference source."""
    kind, where = parse_source(source)
    if kind == "rtplx":
        return kind, load_rtplx_reference(where, languages)
    return kind, load_jsonl(where, languages)

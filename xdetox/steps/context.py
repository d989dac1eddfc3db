"""What a running step sees: its manifest, the run's store, its inputs and an output recorder.

A step writes every output through ``put_file``/``put_bytes`` so that the runner can list it,
with sha256 and size, in the commit record it writes last.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from xdetox.kinds import steps as step_kinds
from xdetox.manifest import CommitRecord, OutputFile, StepManifest, commit_key, partial_prefix
from xdetox.records import parse_lines
from xdetox.store import Store, check_field, check_segment, join
from xdetox.store.files import cache_root, common_prefix, file_sha256
from xdetox.store.partial import PartialState


class InputMissingError(RuntimeError):
    """An upstream step has no commit record: its outputs do not exist yet."""


class StepContext:
    def __init__(self, manifest: StepManifest, store: Store, log: Callable[[str], None] | None = None) -> None:
        self.manifest = manifest
        self.store = store  # rooted at runs/<run-id>/
        self.outputs: dict[str, OutputFile] = {}
        self.info: dict[str, Any] = {}
        self._log = log or (lambda msg: None)
        self._scratch: Path | None = None

    # -- conveniences
    @property
    def params(self) -> dict[str, Any]:
        return self.manifest.params

    def log(self, msg: str) -> None:
        self._log(msg)

    @property
    def scratch(self) -> Path:
        """A local temporary folder for this step, removed when the step ends."""
        if self._scratch is None:
            # The pid in the name lets the next run tell a killed run's scratch from a live one's.
            self._scratch = Path(tempfile.mkdtemp(prefix=f"xdetox-{self.manifest.kind}-pid{os.getpid()}-"))
        return self._scratch

    def cleanup(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def partial(self, unit: str, total: int | None = None) -> PartialState:
        """This step's resumable partial state (chunks or checkpoints, and progress in ``unit``)."""
        return PartialState(self.store, partial_prefix(self.manifest.key), unit, total)

    # -- outputs
    def output_key(self, rel: str) -> str:
        return join(self.manifest.output_prefix, rel)

    def put_file(self, rel: str, path: Path) -> str:
        key = self.output_key(rel)
        self.store.put_file(key, path)
        self.outputs[key] = OutputFile(key=key, sha256=file_sha256(path), size=Path(path).stat().st_size)
        return key

    def put_bytes(self, rel: str, data: bytes) -> str:
        key = self.output_key(rel)
        self.store.put_bytes(key, data)
        self.outputs[key] = OutputFile(key=key, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        return key

    def put_json(self, rel: str, obj: Any) -> str:
        return self.put_bytes(rel, (json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode())

    def put_dir(self, rel: str, folder: Path) -> list[str]:
        keys = []
        for p in sorted(Path(folder).rglob("*")):
            if p.is_file():
                keys.append(self.put_file(join(rel, p.relative_to(folder).as_posix()) if rel else
                                          p.relative_to(folder).as_posix(), p))
        return keys

    # -- inputs
    def input_keys(self, name: str) -> list[str]:
        if name not in self.manifest.inputs:
            raise KeyError(f"step {self.manifest.key} has no input {name!r}; inputs: {sorted(self.manifest.inputs)}")
        return self.manifest.inputs[name]

    def has_input(self, name: str) -> bool:
        return name in self.manifest.inputs

    def input_records(self, name: str) -> list[CommitRecord]:
        out = []
        for key in self.input_keys(name):
            ck = commit_key(key)
            if not self.store.exists(ck):
                raise InputMissingError(f"input {name!r}: step {key} has not committed its outputs")
            rec = CommitRecord.model_validate_json(self.store.get_bytes(ck))
            if rec.key != key:
                raise ValueError(f"{self.store.uri}/{ck}: commit record names step {rec.key!r}, not {key!r}")
            out.append(rec)
        return out

    def input_dir(self, name: str) -> Path:
        """A local folder holding the outputs of the single upstream step ``name`` (e.g. a model).

        On a file store this is the folder itself; on S3 the files are downloaded once into the
        cache and checked against the sha256 of the commit record.
        """
        records = self.input_records(name)
        if len(records) != 1:
            raise ValueError(f"input {name!r} has {len(records)} upstream steps; input_dir needs exactly one")
        rec = records[0]
        # The record came from the store: its keys are checked before they name local paths.
        check_segment(rec.key, f"commit record of input {name!r}: field 'key'")
        for o in rec.outputs:
            check_field(o.key, f"commit record of step {rec.key}: output key")
        prefix = common_prefix([o.key for o in rec.outputs])
        local = self.store.local_path(prefix) if rec.outputs else None
        if local is not None:
            return local
        # Keyed by step key and content digest: a cache shared by processes, or by stores that
        # hold different computations under one key, never serves one's files for the other's.
        contents = hashlib.sha256("".join(f"{o.key}\0{o.sha256}\n" for o in rec.outputs).encode()).hexdigest()[:16]
        dest = cache_root() / "inputs" / f"{rec.key}-{contents}"
        marker = dest / ".complete"
        if marker.exists():
            return _under(dest, prefix)
        for o in rec.outputs:
            target = _under(dest, o.key)
            self.store.get_file(o.key, target, o.sha256)
            got = file_sha256(target)
            if got != o.sha256:
                raise RuntimeError(f"{self.store.uri}/{o.key}: sha256 {got} does not match its commit record")
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("ok")
        return _under(dest, prefix)

    def iter_input_rows(self, name: str, model: Any = None) -> Iterator[Any]:
        """Rows of every JSONL output of the upstream steps ``name``, in plan order."""
        for rec in self.input_records(name):
            for o in rec.outputs:
                if not o.key.endswith(".jsonl"):
                    continue
                yield from parse_lines(self.store.iter_lines(o.key, o.sha256), f"{self.store.uri}/{o.key}", model)


_SCRATCH = re.compile(r"^xdetox-(?P<kind>[a-z][a-z0-9_]*)-(?:pid(?P<pid>\d+)-)?")
#: scratch without a pid in its name (written before pids were recorded) is removed after this long
UNOWNED_SCRATCH_MAX_AGE_S = 24 * 3600


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_scratch(tmpdir: Path | None = None, now: float | None = None) -> list[Path]:
    """Remove ``xdetox-<kind>-*`` scratch folders that a killed step left in TMPDIR.

    A folder is stale when the process named in it is gone (a reused pid keeps it: the safe
    side), or, for folders without a pid, when it is older than a day. Returns what was removed.
    """
    root = Path(tmpdir or tempfile.gettempdir())
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _SCRATCH.match(p.name)
        if not m or m.group("kind") not in step_kinds.names() or not p.is_dir() or p.is_symlink():
            continue
        pid = m.group("pid")
        if pid is not None:
            stale = int(pid) != os.getpid() and not _alive(int(pid))
        else:
            try:
                stale = now - p.stat().st_mtime > UNOWNED_SCRATCH_MAX_AGE_S
            except OSError:
                continue
        if stale:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _under(root: Path, key: str) -> Path:
    return root.joinpath(*key.split("/")) if key else root

"""What besides its manifest changes a step's results: fixed by the runner, or recorded and checked.

A step key digests the manifest (kind, params, inputs, shard, CODE_EPOCH), so a dtype, a model
revision or a seed is part of the key. Three things are not, yet change numbers:

- torch's intra-op thread count (CPU float sums are split differently: 16 of 629 metric numbers
  and 2 of 8 generate/score digests differ between 1 and 2 threads). **Fixed**: the runner sets it
  to ``XDETOX_TORCH_THREADS``, default :data:`DEFAULT_TORCH_THREADS`, before every step, so pods
  with different core counts compute the same thing (torch's own default is the machine's core
  count, and a pod sees its node's cores, not its CPU request).
- the device (CPU or CUDA: e.g. bf16 training only on a GPU that has it) and
- the versions of the libraries that compute results (:data:`RESULT_LIBRARIES`).

All three are **recorded** in the commit record's ``versions`` and **checked** when a committed step
is reused: a step committed under another setting is not silently taken as this one's. The
policy on a mismatch is an error (:class:`EnvironmentMismatch`, exit 2) naming the step, the
setting and both values: rerun with the same setting, or under another run name or store. Setting
``XDETOX_ALLOW_ENV_MISMATCH=1`` reuses it anyway, with a warning in the log (the operator's
explicit choice, e.g. after a patch release known not to change numbers). Recomputing instead is
not an option: the key's outputs may already have been read by downstream steps.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from importlib import metadata

THREADS_ENV = "XDETOX_TORCH_THREADS"
ALLOW_MISMATCH_ENV = "XDETOX_ALLOW_ENV_MISMATCH"
#: 2: what the nightly reference and the benches were computed with (torch's default on the 2-core
#: CI machine), so pinning it changes none of their numbers there. GPU steps spend little time in CPU
#: kernels; a CPU-heavy deployment sets XDETOX_TORCH_THREADS to its pods' CPU request.
DEFAULT_TORCH_THREADS = 2
#: libraries whose version can change a step's numbers (recorded only when the step's process loaded them)
RESULT_LIBRARIES = ("torch", "transformers", "trl", "peft", "vllm", "tokenizers")


class EnvironmentMismatch(ValueError):
    """A committed step was computed under another setting than this process would use."""


def torch_threads() -> int:
    """The intra-op thread count every step runs with: ``XDETOX_TORCH_THREADS`` or the default."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return DEFAULT_TORCH_THREADS
    if not raw.isdigit() or int(raw) < 1:
        raise EnvironmentMismatch(f"{THREADS_ENV}={raw!r}: expected a whole number of threads >= 1")
    return int(raw)


@contextlib.contextmanager
def pinned_threads() -> Iterator[int]:
    """Run a step with torch's thread count fixed (and restore a caller's own setting after it).

    Without torch loaded yet, OMP_NUM_THREADS makes torch start with that count when the step
    imports it (torch reads it at import); importing torch here would cost every step that never
    uses it (evaluate, report) a second and its memory.
    """
    n = torch_threads()
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = str(n)
        yield n
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(previous)


def record() -> dict[str, str]:
    """The setting a step just ran under, for its commit record (call while threads are pinned)."""
    out: dict[str, str] = {}
    for name in RESULT_LIBRARIES:
        if name in sys.modules:
            with contextlib.suppress(metadata.PackageNotFoundError):
                out[name] = metadata.version(name)
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_threads"] = str(torch.get_num_threads())
        out["device"] = _device(torch)
    return out


def _device(torch: object) -> str:
    cuda = getattr(torch, "cuda", None)
    try:
        return "cuda" if cuda is not None and cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - a broken driver means the step ran on the CPU
        return "cpu"


def _current(field: str) -> str | None:
    """What this process would record for ``field`` (None: not known without running the step)."""
    if field == "torch_threads":
        return str(torch_threads())
    if field == "device":
        try:
            import torch
        except ImportError:
            return None  # an image without torch runs no torch step: nothing to compare
        return _device(torch)
    try:
        return metadata.version(field)
    except metadata.PackageNotFoundError:
        return "not installed"


def differences(versions: dict[str, str]) -> list[tuple[str, str, str]]:
    """(setting, committed value, this process's value) for each recorded setting that differs."""
    out = []
    for field in ("torch_threads", "device", *RESULT_LIBRARIES):
        if field in versions and (now := _current(field)) is not None and now != versions[field]:
            out.append((field, versions[field], now))
    return out


def check_reuse(step: str, versions: dict[str, str], log: Callable[[str], None]) -> None:
    """Refuse to reuse a committed step computed under another setting (see the module's policy)."""
    diff = differences(versions)
    if not diff:
        return
    what = "; ".join(f"{field} {then} when committed, {now} here" for field, then, now in diff)
    if os.environ.get(ALLOW_MISMATCH_ENV) == "1":
        log(f"warning: reusing step {step} computed under another setting ({what}): {ALLOW_MISMATCH_ENV}=1")
        return
    hint = f" (set {THREADS_ENV}={versions['torch_threads']})" if any(f == "torch_threads" for f, _, _ in diff) else ""
    raise EnvironmentMismatch(
        f"step {step} was committed under another setting than this process's: {what}. Its outputs would "
        f"not be what this run computes; rerun with the committed setting{hint}, or use another run name or "
        f"store (or set {ALLOW_MISMATCH_ENV}=1 to reuse it anyway)")

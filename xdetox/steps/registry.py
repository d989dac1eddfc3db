"""Which function runs which step kind: the kind's declared ``run`` (xdetox.kinds.steps), or an
in-process override. Imported lazily: the CLI stays fast, and an image only
needs the dependencies of the steps it runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from xdetox.kinds import steps as step_kinds
from xdetox.steps.context import StepContext

StepFn = Callable[[StepContext], dict[str, Any] | None]

_OVERRIDES: dict[str, StepFn] = {}


def register(kind: str, fn: StepFn) -> None:
    """Replace a kind's implementation in this process (tests use it for toy steps)."""
    _OVERRIDES[kind] = fn


def unregister(kind: str) -> None:
    _OVERRIDES.pop(kind, None)


@contextmanager
def overridden(fns: dict[str, StepFn]) -> Iterator[None]:
    """Run these kinds with these functions inside the block (tests' toy steps); whatever ran
    them before comes back afterwards, even when the block fails."""
    saved = {kind: _OVERRIDES.get(kind) for kind in fns}
    _OVERRIDES.update(fns)
    try:
        yield
    finally:
        for kind, fn in saved.items():
            if fn is None:
                _OVERRIDES.pop(kind, None)
            else:
                _OVERRIDES[kind] = fn


def resolve(kind: str) -> StepFn:
    if kind in _OVERRIDES:
        return _OVERRIDES[kind]
    module, _, attr = step_kinds.get(kind).run.partition(":")  # the kind's declared entry point
    return getattr(importlib.import_module(module), attr)

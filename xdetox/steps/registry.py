"""Which function runs which step kind. Imported lazily: the CLI stays fast, and an image only
needs the dependencies of the steps it runs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from xdetox.steps.context import StepContext

StepFn = Callable[[StepContext], dict[str, Any] | None]

_BUILTIN: dict[str, str] = {
    "build_model": "xdetox.steps.build_model:run",
    "train": "xdetox.steps.train:run",
    "generate": "xdetox.steps.generate:run",
    "score": "xdetox.steps.score:run",
    "align": "xdetox.steps.align:run",
    "analyze": "xdetox.steps.analyze:run",
    "evaluate": "xdetox.steps.evaluate:run",
    "report": "xdetox.steps.report:run",
}
_OVERRIDES: dict[str, StepFn] = {}


def register(kind: str, fn: StepFn) -> None:
    """Replace a kind's implementation in this process (tests use it for toy steps)."""
    _OVERRIDES[kind] = fn


def unregister(kind: str) -> None:
    _OVERRIDES.pop(kind, None)


def resolve(kind: str) -> StepFn:
    if kind in _OVERRIDES:
        return _OVERRIDES[kind]
    target = _BUILTIN.get(kind)
    if target is None:
        raise KeyError(f"unknown step kind {kind!r}")
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)

"""The step-kind registry: ``register(kind)``, ``get(name)``, ``all_kinds()``.

One module per built-in kind declares it; a kind defined elsewhere (a plugin, a test) calls
``register`` and the local executor, the step runner and the Argo renderer then handle it like a
built-in one.
"""

from __future__ import annotations

import re

from xdetox import manifest
from xdetox.kinds.steps.base import StepKind

__all__ = ["StepKind", "all_kinds", "check", "get", "names", "register", "unregister"]

_KINDS: dict[str, StepKind] = {}


def register(kind: StepKind) -> StepKind:
    """Add (or replace) a kind; its planning hook runs after those registered before it in its scope."""
    if not re.match(manifest.KIND_NAME, kind.name):
        raise ValueError(f"step kind name {kind.name!r}: lower-case letters, digits and _ (starting with a letter)")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)


def check(name: str) -> None:
    """Raise ValueError naming the registered kinds when ``name`` is not one (manifests call it)."""
    if name not in _KINDS:
        raise ValueError(f"unknown step kind {name!r}; registered: {', '.join(sorted(_KINDS))}")


manifest.set_kind_check(check)


def get(name: str) -> StepKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(f"unknown step kind {name!r}; registered: {', '.join(sorted(_KINDS))}") from None


def all_kinds() -> list[StepKind]:
    return list(_KINDS.values())


def names() -> frozenset[str]:
    return frozenset(_KINDS)


# the built-in kinds register themselves on import, in plan order
from xdetox.kinds.steps import (  # noqa: E402,F401,I001
    build_model, train, generate, score, perplexity, align, analyze, analyze_score, evaluate, report,
)

"""The scorer-kind registry: ``register(kind)``, ``get(name)``, ``all_kinds()``.

The built-in kinds (lexicon, perspective, classifier) are modules of this package that register
themselves when it is imported; a kind defined elsewhere (a plugin, a test) calls ``register`` and
is then accepted by the spec, planned, scored and reported like a built-in one.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, TypeAdapter

from xdetox.kinds.scorers.base import (
    TOXICITY_METRICS,
    HeadlineMetric,
    ScoreCost,
    ScoreKind,
    ScoreRates,
    ScorerKind,
    ScorerSpecBase,
    headline_metric,
)

__all__ = ["TOXICITY_METRICS", "HeadlineMetric", "ScoreCost", "ScoreKind", "ScoreRates", "ScorerKind", "ScorerSpecBase",
           "all_kinds", "declared_score_kind", "default_spec", "get", "headline_metric", "names",
           "register", "unregister", "validate_spec"]

_KINDS: dict[str, ScorerKind] = {}
_ADAPTER: dict[tuple[str, ...], TypeAdapter[Any]] = {}
DEFAULT = "lexicon"


def register(kind: ScorerKind) -> ScorerKind:
    """Add a kind (re-registering the same name replaces it: a reloaded module stays consistent)."""
    _KINDS[kind.name] = kind
    _ADAPTER.clear()
    return kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)
    _ADAPTER.clear()


def get(name: str) -> ScorerKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise KeyError(f"unknown scorer kind {name!r}; registered: {', '.join(sorted(_KINDS))}") from None


def find(name: str | None) -> ScorerKind | None:
    """The kind, or None for an unknown or absent name (reading old records must not fail)."""
    return _KINDS.get(name or "")


def declared_score_kind(scorer: Any) -> str:
    """What a scorer spec (its model, its dump, or a bare kind name) declares it produces: its kind's
    score kind; probabilities once a calibration map is named (maps go onto a probability scale) and
    for a kind this install does not know (reading old records must not fail)."""
    if isinstance(scorer, BaseModel):
        scorer = scorer.model_dump()
    elif isinstance(scorer, str) or scorer is None:
        scorer = {"kind": scorer}
    if scorer.get("calibration"):
        return "probability"
    kind = find(scorer.get("kind"))
    return kind.score_kind if kind else "probability"


def all_kinds() -> list[ScorerKind]:
    return list(_KINDS.values())


def names() -> frozenset[str]:
    return frozenset(_KINDS)


def default_spec() -> BaseModel:
    return get(DEFAULT).spec_model()


def validate_spec(value: Any) -> BaseModel:
    """A scorer spec from its dump (or an already-built spec of a registered kind), dispatched on ``kind``.

    A discriminated union over the registered models: errors carry the same locations and messages
    as a static union (``scoring.<kind>.<field>``, ``union_tag_invalid`` naming the known kinds).
    """
    if isinstance(value, BaseModel) and any(type(value) is k.spec_model for k in _KINDS.values()):
        return value
    key = tuple(_KINDS)
    adapter = _ADAPTER.get(key)
    if adapter is None:
        models = tuple(k.spec_model for k in _KINDS.values())
        union: Any = models[0]
        if len(models) > 1:
            union = Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007 - built at run time
        adapter = _ADAPTER[key] = TypeAdapter(union)
    if isinstance(value, BaseModel):
        value = value.model_dump()
    return adapter.validate_python(value)  # type: ignore[no-any-return]


# the built-in kinds register themselves on import
from xdetox.kinds.scorers import lexicon, perspective, classifier, ngram, stacked  # noqa: E402,F401,I001 - order: schema oneOf

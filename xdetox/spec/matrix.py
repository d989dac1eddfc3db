"""Matrix and variants: a spec's settings, each a full valid spec. Pure (no file access), so the
planner expands settings without importing the spec loader."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

import xdetox.kinds.scorers as scorer_kinds
from xdetox.spec.errors import SpecError, SpecProblem, problems_from_validation
from xdetox.spec.models import ExperimentSpec, ModelSpec


@dataclass(frozen=True)
class _AnyOf:
    """Looks like a union's type arguments to _path_exists."""

    __args__: tuple[Any, ...]


def _path_exists(data: dict[str, Any], path: str) -> bool:
    from xdetox.spec.models import ExperimentSpec as _E

    head, *rest = path.split(".")
    if head not in _E.model_fields:
        return False
    model: Any = _E.model_fields[head].annotation
    if head == "models" and rest:
        # models.<id>.<field>...: one model's setting, the model named by its id
        ids = [m.get("id") for m in data.get("models") or [] if isinstance(m, dict)]
        if rest[0] not in ids:
            return False
        model, rest = ModelSpec, rest[1:]
    if head == "scoring":  # dispatched through the registry: a field of any registered kind's model
        model = _AnyOf(tuple(k.spec_model for k in scorer_kinds.all_kinds()))
    for part in rest:
        fields = getattr(model, "model_fields", None)
        if fields is None:
            # Optional[Model] or a union: look through its args for a model with that field.
            args = getattr(model, "__args__", ())
            found = next((a for a in args if hasattr(a, "model_fields") and part in a.model_fields), None)
            if found is None:
                return False
            model = found.model_fields[part].annotation
            continue
        if part not in fields:
            return False
        model = fields[part].annotation
    return True


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    cur = data
    if parts[0] == "models" and len(parts) > 1:  # models.<id>[.<field>...]: the model with that id
        models = data["models"]
        i = next(i for i, m in enumerate(models) if m.get("id") == parts[1])
        if len(parts) == 2:
            models[i] = value
            return
        cur, parts = models[i], parts[2:]
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value


def expand_matrix(spec: ExperimentSpec) -> list[tuple[dict[str, Any], ExperimentSpec]]:
    """The settings of a spec: the Cartesian product of its matrix, each a full valid spec.

    Returns (overrides, spec) pairs; a spec without a matrix is one setting with no overrides.
    """
    if not spec.matrix and not spec.variants:
        return [({}, spec)]
    base = spec.model_dump(mode="json", exclude={"matrix", "variants"})
    paths = sorted(spec.matrix)
    out = []
    variants = spec.variants or [{}]
    for variant, combo in itertools.product(variants, itertools.product(*(spec.matrix[p] for p in paths))):
        overrides = {**variant, **dict(zip(paths, combo, strict=True))}
        data = _deep_copy(base)
        for path, value in overrides.items():
            if path != "label":
                _set_path(data, path, value)
        try:
            out.append((overrides, ExperimentSpec.model_validate(data)))
        except ValidationError as exc:
            where = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
            raise SpecError(
                [SpecProblem(p.path, f"{p.message} (in matrix setting {where})") for p in problems_from_validation(exc)]
            ) from None
    return out


def _deep_copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deep_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deep_copy(v) for v in obj]
    return obj



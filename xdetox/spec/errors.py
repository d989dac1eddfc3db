"""Spec problems: Pydantic validation errors turned into ``path: message`` lines (with the YAML
line when known). Pure: no file or YAML access, so the planner may use it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

import xdetox.kinds.scorers as scorer_kinds


@dataclass(frozen=True)
class SpecProblem:
    path: str
    message: str
    line: int | None = None

    def render(self, source: str | None) -> str:
        where = f"{source}:{self.line}: " if source and self.line else (f"{source}: " if source else "")
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class SpecError(Exception):
    def __init__(self, problems: list[SpecProblem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        super().__init__("\n".join(p.render(source) for p in problems))


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "extra_forbidden": "unknown field (not allowed here; check the spelling)",
    "missing": "field required",
    "too_short": "must have at least {min_length} item(s)",
}


def _humanize(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in _MESSAGES:
        try:
            nice = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in ctx.items()}
            return _MESSAGES[kind].format(**nice)
        except (KeyError, IndexError):
            pass
    if kind == "literal_error" and "expected" in ctx:
        return f"must be one of {ctx['expected']} (got {err.get('input')!r})"
    if kind == "union_tag_invalid":
        return f"unknown kind {ctx.get('tag')!r}; allowed: {ctx.get('expected_tags')}"
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def _user_loc(loc: tuple[Any, ...], scoring_list: bool = False) -> tuple[Any, ...]:
    """The location as the user wrote it: without the scorer-kind tag of a scorer union (a branch,
    not a key), and, when ``scoring`` was written as a list, with the first scorer at
    ``scoring[0]`` and ``compare_scorers[i]`` at ``scoring[i + 1]`` (where the loader moved them)."""
    if scoring_list and loc[:1] == ("scoring",):
        loc = ("scoring", 0, *loc[1:])
    elif scoring_list and len(loc) > 1 and loc[0] == "compare_scorers" and isinstance(loc[1], int):
        loc = ("scoring", loc[1] + 1, *loc[2:])
    out: list[Any] = []
    for i, x in enumerate(loc):
        scorer_slot = (i and loc[i - 1] == "scoring") or (
            i > 1 and isinstance(loc[i - 1], int) and loc[i - 2] in ("scoring", "compare_scorers"))
        if scorer_slot and isinstance(x, str) and x in scorer_kinds.names():
            continue
        out.append(x)
    return tuple(out)


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in _user_loc(loc):
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _line_for(loc: tuple[Any, ...], index: dict[tuple[Any, ...], int]) -> int | None:
    loc = _user_loc(loc)
    for n in range(len(loc), -1, -1):
        if loc[:n] in index:
            return index[loc[:n]]
    return None


def problems_from_validation(
    exc: ValidationError, index: dict[tuple[Any, ...], int] | None = None, prefix: str = "",
    scoring_list: bool = False,
) -> list[SpecProblem]:
    out = []
    for err in exc.errors():
        loc = _user_loc(tuple(err.get("loc", ())), scoring_list)
        path = _loc_to_path(loc)
        out.append(
            SpecProblem(
                path=f"{prefix}{path}" if prefix else path,
                message=_humanize(err),  # type: ignore[arg-type]
                line=_line_for(loc, index or {}),
            )
        )
    return out



"""What a scorer spec's ``calibration: URI`` names: a per-language monotone map onto a reference scale.

The map file is what ``xdetox scorer check --fit-calibration MAP.json`` writes::

    {"kind": "isotonic", "scorer_id": ..., "scorer_version": ..., "reference": "jsonl:ptp.jsonl",
     "digest": "<sha256 of the maps>", "languages": {"en": {"map": {"x": [...], "y": [...]}, ...}}}

Applied, a score ``s`` of language ``L`` becomes ``interp(s, x_L, y_L)`` (linear between
breakpoints, clipped outside: the same rule as ``xdetox.metrics.calibration.apply_map``). The
score step only takes maps onto probabilities (every ``y`` in [0, 1]): its metrics (expected
maximum toxicity, toxicity probability) are defined on that scale, so a map onto RTP-LX's 1-5
ratings is for inspection, not for scoring. The digest names the scale in every row and report.

This module only parses (no I/O: declarations import no store); ``xdetox.scoring.calibrated``
reads maps from files or s3:// and pins their digests into loaded specs.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

#: the only map kind there is (isotonic breakpoints); a different kind is refused, not guessed
MAP_KINDS = ("isotonic",)


class CalibrationMapError(ValueError):
    """A map file that cannot be used: names the file and the field at fault."""

    def __init__(self, where: str, field: str, message: str) -> None:
        self.where, self.field = where, field
        super().__init__(f"calibration map {where}: field {field!r}: {message}" if field
                         else f"calibration map {where}: {message}")


@dataclass(frozen=True)
class CalibrationMap:
    uri: str
    digest: str
    reference: str
    scorer_id: str | None
    scorer_version: str | None
    #: language -> (x breakpoints, y values), both non-empty, x non-decreasing
    maps: dict[str, tuple[tuple[float, ...], tuple[float, ...]]]

    @property
    def scale(self) -> str:
        """The scale a person reads in rows and reports."""
        return f"calibrated to {self.reference} by map {self.digest[:12]}"

    def for_language(self, language: str) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """The language's map; a regional code (``zh-Hant``, ``pt_BR``) falls back to its base language."""
        if language in self.maps:
            return self.maps[language]
        return self.maps.get(language.replace("_", "-").split("-")[0].lower())


def maps_digest(maps: dict[str, Any]) -> str:
    """sha256 of ``{language: {"x": [...], "y": [...]}}`` as canonical JSON (languages sorted)."""
    canon = {lang: maps[lang] for lang in sorted(maps)}
    return hashlib.sha256(json.dumps(canon, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _numbers(where: str, field: str, value: Any) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise CalibrationMapError(where, field, f"must be a non-empty list of numbers, got {value!r}"[:200])
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise CalibrationMapError(where, f"{field}[{i}]", f"must be a finite number, got {v!r}")
        out.append(float(v))
    return tuple(out)


def parse_map(data: bytes, where: str) -> CalibrationMap:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CalibrationMapError(where, "", f"not a JSON document ({e})") from None
    if not isinstance(doc, dict):
        raise CalibrationMapError(where, "", f"expected a JSON object, got {type(doc).__name__}")
    if doc.get("kind") not in MAP_KINDS:
        raise CalibrationMapError(where, "kind", f"must be one of {', '.join(MAP_KINDS)}, got {doc.get('kind')!r}")
    reference = doc.get("reference")
    if not isinstance(reference, str) or not reference:
        raise CalibrationMapError(where, "reference", "must name the reference the map was fit to")
    langs = doc.get("languages")
    if not isinstance(langs, dict):
        raise CalibrationMapError(where, "languages", "must be an object of language -> {map: {x, y}}")
    maps: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
    raw: dict[str, Any] = {}
    for lang, entry in langs.items():
        field = f"languages.{lang}.map"
        if not isinstance(entry, dict) or "map" not in entry:
            raise CalibrationMapError(where, f"languages.{lang}", "must be an object with a 'map'")
        m = entry["map"]
        if m is None:  # too few scored texts to fit: the language has no map (its rows are missing)
            continue
        if not isinstance(m, dict):
            raise CalibrationMapError(where, field, "must be {x: [...], y: [...]} or null")
        x, y = _numbers(where, f"{field}.x", m.get("x")), _numbers(where, f"{field}.y", m.get("y"))
        if len(x) != len(y):
            raise CalibrationMapError(where, field, f"x has {len(x)} breakpoints but y has {len(y)}")
        if any(b < a for a, b in zip(x, x[1:], strict=False)):
            raise CalibrationMapError(where, f"{field}.x", "must be non-decreasing")
        if any(b < a for a, b in zip(y, y[1:], strict=False)):
            raise CalibrationMapError(where, f"{field}.y", "must be non-decreasing (the map is monotone)")
        if y[0] < 0.0 or y[-1] > 1.0:
            raise CalibrationMapError(where, f"{field}.y", f"runs from {y[0]:g} to {y[-1]:g}: the score step "
                                      "needs a map onto probabilities in [0, 1] (fit against a probability "
                                      "reference such as cached Perspective scores)")
        maps[str(lang)] = (x, y)
        raw[str(lang)] = m
    if not maps:
        raise CalibrationMapError(where, "languages", "holds no map for any language")
    digest = maps_digest(raw)
    stated = doc.get("digest")
    if stated is not None and stated != digest:
        raise CalibrationMapError(where, "digest", f"{stated!r} does not match the maps' sha256 {digest!r} "
                                  "(maps edited after fitting?)")
    sid, sver = doc.get("scorer_id"), doc.get("scorer_version")
    return CalibrationMap(uri=where, digest=digest, reference=reference,
                          scorer_id=sid if isinstance(sid, str) else None,
                          scorer_version=sver if isinstance(sver, str) else None, maps=maps)

"""A scorer whose numbers pass through a calibration map, per language, onto a reference's probability scale.

Wraps any scorer (``build_scorer`` does it when the spec names ``calibration:``): the inner
scorer's probability or hit count ``s`` of a row in language ``L`` becomes ``interp(s, x_L, y_L)``
(numpy's linear interpolation, clipped at both ends: the rule the map was fit and cross-validated
with). Every result keeps the inner score as ``raw_score``; a row in a language the map has no
map for gets a missing score with the reason (scores on two scales never mix in one column).
The version gains ``+cal.<digest>`` so calibrated and raw rows never aggregate as one scorer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from xdetox.kinds.scorers.calibration import CalibrationMap, CalibrationMapError, parse_map
from xdetox.records import GenerationRow
from xdetox.scoring.base import Scorer, ScoreResult, missing


def _read_bytes(uri: str) -> bytes:
    if uri.startswith("s3://"):
        from xdetox.store import StoreError, open_store

        parent, _, name = uri[len("s3://"):].rpartition("/")
        if not parent or not name or "/" not in uri[len("s3://"):]:
            raise CalibrationMapError(uri, "", "expected s3://bucket/key")
        try:
            return open_store(f"s3://{parent}").get_bytes(name)
        except FileNotFoundError:  # the store's NotFoundError
            raise CalibrationMapError(uri, "", "no such object") from None
        except (StoreError, ValueError) as e:
            raise CalibrationMapError(uri, "", f"cannot be read ({e})") from None
    path = Path(uri.removeprefix("file://"))
    if not path.is_file():
        raise CalibrationMapError(uri, "", "no such file")
    try:
        return path.read_bytes()
    except OSError as e:
        raise CalibrationMapError(uri, "", f"cannot be read ({e.strerror or e})") from None


def read_map(uri: str) -> CalibrationMap:
    """The map at a local path, file:// or s3:// URI; CalibrationMapError names the file and field."""
    return parse_map(_read_bytes(uri), uri)


def pin_scorer_calibration(scorer_spec: Any, field: str, source: str | None) -> Any:
    """One scorer spec with its calibration map read and the map's digest pinned (SpecError if unusable)."""
    from xdetox.spec.errors import SpecError, SpecProblem

    uri = getattr(scorer_spec, "calibration", None)
    if not uri:
        return scorer_spec
    try:
        cmap = read_map(uri)
    except CalibrationMapError as e:
        raise SpecError([SpecProblem(f"{field}.calibration", str(e))], source) from None
    stated = getattr(scorer_spec, "calibration_digest", None)
    if stated is not None and stated != cmap.digest:
        raise SpecError([SpecProblem(f"{field}.calibration_digest",
                                     f"{stated!r}, but the map {uri} has digest {cmap.digest!r}")], source)
    return scorer_spec.model_copy(update={"calibration_digest": cmap.digest})


def pin_calibration(spec: Any, source: str | None = None) -> Any:
    """The spec with each calibration map it names read and its digest pinned into that scorer's spec.

    The digest then travels in the score step's params, so a changed map is a new step key (never
    a stale cached score). A map that cannot be used, or a stated digest it does not match, is a
    SpecError naming the field and the map file (commands print it and exit 2).
    """
    compare = list(getattr(spec, "compare_scorers", []))
    update: dict[str, Any] = {"scoring": pin_scorer_calibration(spec.scoring, "scoring", source)}
    if compare:
        update["compare_scorers"] = [pin_scorer_calibration(c, f"compare_scorers[{i}]", source) for i, c in enumerate(compare)]
    return spec.model_copy(update=update)


class CalibratedScorer(Scorer):
    score_kind = "probability"

    def __init__(self, inner: Scorer, uri: str, expected_digest: str | None = None) -> None:
        cmap = read_map(uri)
        if expected_digest is not None and expected_digest != cmap.digest:
            raise CalibrationMapError(uri, "digest", f"the map's digest is {cmap.digest} but the spec pinned "
                                      f"{expected_digest} (the map changed after the spec was loaded)")
        # the same scorer: the same id (a lexicon whose lists were updated) or the same version (a
        # classifier's weights digest, whatever folder they were loaded from); neither is another scorer
        same_id = cmap.scorer_id is None or cmap.scorer_id == inner.id
        if not same_id and cmap.scorer_version != inner.version:
            raise CalibrationMapError(uri, "scorer_id", f"the map was fit to scorer {cmap.scorer_id!r}, "
                                      f"but this spec's scorer is {inner.id!r} (version {inner.version})")
        self.inner = inner
        self.map: CalibrationMap = cmap
        self.id = inner.id
        self.version = f"{inner.version}+cal.{cmap.digest[:12]}"
        self.scale = cmap.scale
        self.calibration_digest = cmap.digest
        #: the map was fit to another version of the scorer (e.g. an updated word list): said, not refused
        self.version_mismatch = cmap.scorer_version is not None and cmap.scorer_version != inner.version

    def supports(self, language: str) -> bool:
        return self.inner.supports(language) and self.map.for_language(language) is not None

    def score_batch(self, rows: Sequence[GenerationRow]) -> list[ScoreResult]:
        out: list[ScoreResult] = []
        for row, res in zip(rows, self.inner.score_batch(rows), strict=True):
            raw = res.toxicity if self.inner.score_kind == "probability" else res.hits
            if raw is None:
                out.append(res)
                continue
            m = self.map.for_language(row.language)
            if m is None:
                reason = f"calibration: map {self.map.digest[:12]} has no map for language {row.language!r}"
                out.append(replace(missing(reason), raw_score=float(raw), truncated=res.truncated))
                continue
            value = float(np.interp(float(raw), m[0], m[1]))
            out.append(ScoreResult(toxicity=value, spans=res.spans, truncated=res.truncated, raw_score=float(raw)))
        return out

    def close(self) -> None:
        self.inner.close()

    def attach_store(self, store: object) -> None:
        self.inner.attach_store(store)

    def finish(self) -> None:
        self.inner.finish()

    def passing_gap(self, score_error: str) -> bool:
        return self.inner.passing_gap(score_error)

    def stats(self) -> dict[str, int]:
        return self.inner.stats()

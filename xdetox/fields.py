"""Field types shared by the spec and the kind declarations: the lowest layer, importing no other
xdetox module, so a scorer kind's spec model (xdetox.kinds.scorers) and the experiment spec
(xdetox.spec) use the same names, languages and strictness without importing each other."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# ISO 639-1 codes (plus script/region variants used by RTP-LX and Perspective) that xdetox knows.
KNOWN_LANGUAGES: frozenset[str] = frozenset(
    ["af", "am", "ar", "az", "be", "bg", "bn", "ca", "ceb", "cs", "cy", "da", "de", "el", "en", "eo", "es", "et", "eu", "fa", "fi", "fil", "fr", "gd", "gl", "he", "hi", "hi-Latn", "hr", "hu", "hy", "id", "is", "it", "ja", "ka", "kk", "km", "ko", "ky", "lt", "lv", "mk", "ml", "mn", "mr", "ms", "mt", "my", "nb", "ne", "nl", "no", "pa", "pl", "ps", "pt", "ro", "ru", "si", "sk", "sl", "so", "sq", "sr", "sv", "sw", "ta", "te", "th", "tl", "tr", "uk", "ur", "uz", "vi", "yo", "zh", "zu"]
)

#: builtin model sources (``models[].source``): recipes in xdetox.models.tiny.TINY_VARIANTS, built
#: offline from bundled text. Listed here, the lowest layer, so the spec can validate a source
#: without importing the model library.
BUILTIN_MODELS: tuple[str, ...] = ("builtin:tiny", "builtin:tiny-ml")

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError("must be lower-case letters, digits and '-', at most 63 characters")
    return v


#: ids and run names: they appear in store keys, step labels, Argo names and file names
Name = Annotated[str, AfterValidator(check_name), Field(json_schema_extra={"pattern": _NAME.pattern})]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def omit_none(out: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """Drop ``names`` whose value is None from a model's dump, in place: a field added later then
    leaves the dump, and so the spec digests and step keys of specs that do not set it, as before."""
    for name in names:
        if out.get(name) is None:
            out.pop(name, None)
    return out


def check_language(code: str) -> str:
    if code not in KNOWN_LANGUAGES:
        raise ValueError(f"unknown language code {code!r}; use ISO 639-1 codes such as en, de, zh")
    return code


Language = Annotated[str, Field(min_length=2, max_length=8)]

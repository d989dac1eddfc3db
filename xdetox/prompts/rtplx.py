"""RTP-LX (microsoft/RTP-LX) prompt files, read from where the user keeps them; never vendored.

Both releases are one JSON object per line in ``RTP_LX_<LOCALE>.json`` files:

- v0.2 (Dec 2023, 17 languages): ``Prompt``, ``Completion``, ``Index`` (an int in some files,
  a string in others), ``Locale`` (e.g. ``ZH`` in ``RTP_LX_ZH-Hans.json``, ``Pt-Br`` and ``PT``
  mixed in ``RTP_LX_PT.json``), ``Dialect``, ``Annotations``, ``AnnotationsRaw``.
- the later release (24+ locales, also packed as ``RTP-LX.zip``): the same fields plus
  ``OriginalMetadata`` (``Filename``, ``Begin``, ``End``), ``Index`` as a string, new locales
  (DA FI HE HU NO-NB TH TR UK ZH-Hant) and Brazilian Portuguese split into ``RTP_LX_PT-BR.json``.
  One revision redacts the English prompts to ``"NA"``: such rows are skipped, and a file with
  no usable prompt is an error.

The source may be a folder of these files, one file, a ``.zip`` of them (its password, if any,
from ``$RTP_LX_ZIP_PASSWORD``), or an ``s3://`` URI of any of these.

Prompt ids: ``rtplx-<Index:05d>``: the same Index is the same source prompt in every language,
so ids align across languages. A second file for the same language (``PT-BR`` beside ``PT``)
gets ``rtplx-<LOCALE>-<Index:05d>`` so ids stay unique.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from xdetox.prompts.base import PromptItem, PromptSetError, check_languages, read_objects, text_field
from xdetox.spec.models import KNOWN_LANGUAGES

_FILE = re.compile(r"^RTP_LX_(?P<locale>[A-Za-z]{2}(?:-[A-Za-z]+)?)\.json$")

#: file locale -> xdetox language code, where the lower-cased locale is not already the code.
LOCALE_TO_LANGUAGE: dict[str, str] = {
    "ZH-Hans": "zh",
    "NO-NB": "nb",
    "PT-BR": "pt",
}
#: file locales with no xdetox language code (Traditional Chinese): listed, never selectable.
UNMAPPED_LOCALES: frozenset[str] = frozenset({"ZH-Hant"})
#: language codes that name the same files as another code.
ALIASES: dict[str, str] = {"no": "nb"}
REDACTED = {"NA", ""}


def language_of(locale: str) -> str | None:
    if locale in UNMAPPED_LOCALES:
        return None
    if locale in LOCALE_TO_LANGUAGE:
        return LOCALE_TO_LANGUAGE[locale]
    code = locale.lower()
    return code if code in KNOWN_LANGUAGES else None


def _primary(locale: str) -> bool:
    """The main file of its language (PT, not PT-BR): its ids carry no locale."""
    return "-" not in locale or locale in {"ZH-Hans", "NO-NB"}


def _index(value: object, path: str, line: int) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise PromptSetError(f"{path}:{line}: field 'Index' must be an integer, got {value!r}") from None


def _human_toxicity(obj: dict[str, object]) -> float | None:
    """The mean of the three raters' Toxicity (1-5), or None where a row carries no judgment."""
    ann = obj.get("Annotations")
    value = ann.get("Toxicity") if isinstance(ann, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def rtplx_languages(root: Path, source: str) -> list[str]:
    """The xdetox language codes that ``root`` has files for."""
    return _Files(root, source).languages()


class _Files:
    """The RTP_LX_*.json files of a folder, single file or zip, by locale."""

    def __init__(self, root: Path, source: str) -> None:
        self.root, self.source = root, source
        self.zip: zipfile.ZipFile | None = None
        self.by_locale: dict[str, str] = {}
        if root.is_file() and root.suffix == ".zip":
            self.zip = zipfile.ZipFile(root)
            password = os.environ.get("RTP_LX_ZIP_PASSWORD")
            if password:
                self.zip.setpassword(password.encode())
            names = [n for n in self.zip.namelist() if not n.endswith("/")]
        elif root.is_file():
            names = [root.name]
        else:
            names = sorted(p.name for p in root.iterdir() if p.is_file())
        for name in names:
            m = _FILE.match(Path(name).name)
            if m:
                self.by_locale[m.group("locale")] = name
        if not self.by_locale:
            raise PromptSetError(f"{source}: no RTP_LX_<LOCALE>.json files found at {root}")

    def files_for(self, language: str) -> list[str]:
        language = ALIASES.get(language, language)
        locales = [loc for loc in self.by_locale if language_of(loc) == language]
        return sorted(locales, key=lambda loc: (not _primary(loc), loc))

    def languages(self) -> list[str]:
        return sorted({lang for loc in self.by_locale if (lang := language_of(loc))})

    def local_file(self, locale: str, scratch: Path) -> Path:
        name = self.by_locale[locale]
        if self.zip is None:
            return self.root if self.root.is_file() else self.root / name
        target = scratch / Path(name).name
        try:
            target.write_bytes(self.zip.read(name))
        except RuntimeError as e:  # encrypted member without (the right) password
            raise PromptSetError(f"{self.source}: cannot read {name} from {self.root}: {e}; "
                                 "set RTP_LX_ZIP_PASSWORD") from None
        return target


def load_rtplx(root: Path, source: str, languages: list[str], scratch: Path) -> Iterator[PromptItem]:
    files = _Files(root, source)
    check_languages([ALIASES.get(lang, lang) for lang in languages], files.languages(), source,
                    f"files found: {', '.join(sorted(files.by_locale.values()))}")
    for language in languages:
        seen: dict[str, str] = {}
        usable = 0
        for locale in files.files_for(language):
            path = files.local_file(locale, scratch)
            shown = f"{source} {files.by_locale[locale]}"
            prefix = "rtplx-" if _primary(locale) else f"rtplx-{locale}-"
            for line, obj in read_objects(path, shown):
                text = obj.get("Prompt")
                if isinstance(text, str) and text.strip() in REDACTED:
                    continue
                text = text_field(obj, "Prompt", shown, line)
                pid = f"{prefix}{_index(obj.get('Index'), shown, line):05d}"
                if pid in seen:
                    raise PromptSetError(f"{shown}:{line}: Index repeats the prompt id {pid} of {seen[pid]}")
                seen[pid] = f"line {line}"
                usable += 1
                yield PromptItem(pid, language, text, {
                    "locale": obj.get("Locale", locale), "dialect": obj.get("Dialect", ""), "file": locale,
                    "line": line, "human_toxicity": _human_toxicity(obj)})
        if usable == 0:
            raise PromptSetError(
                f"{source}: every Prompt for {language!r} is redacted ('NA') in "
                f"{', '.join(files.by_locale[loc] for loc in files.files_for(language))}; "
                "this release ships no text for it: use a release that has it (e.g. v0.2)")

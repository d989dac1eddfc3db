"""Build the embedded lexicons (xdetox/data/lexicons/) from the LDNOOBW word lists.

    python scripts/vendor_lexicons.py [--src ../shared/data/lexicons] [--dest xdetox/data/lexicons]

Sources: LDNOOBW v1 (CC BY 4.0, Shutterstock; attribution kept) is the core; LDNOOBW v2 (CC0)
fills languages v1 lacks. A language takes v1 when v1 gives at least MIN_CORE entries in the
language's own script after filtering, otherwise v2. Filters, in order:

- strip whitespace, skip blank lines and ``#`` comments; NFKC + casefold (Turkish I handled);
- script: a list under a non-Latin script's code keeps only entries written in that script
  (romanized entries such as ``bhosadi ke`` under ``hi`` are dropped; v1's romanized Hindi list
  becomes ``hi-Latn``, Perspective's code for it); a Latin-script list keeps Latin entries;
- symbols: entries with characters other than letters, marks, digits, spaces, ``-`` and ``'``
  are dropped (``a$$``, ``f*ck``, ``13.``): the matcher works on word tokens;
- one-character entries are dropped (``乳`` would hit 乳制品 "dairy", ``性`` every 性格
  "personality"), except a short allowlist of single characters that are vulgar in every use
  (SINGLE_CHAR_KEEP);
- duplicates after normalisation are removed; lists are written sorted.

Version 2 (``lists-v2/``, ``shields-v2/``, ``manifest-v2.json``) is version 1 with the hand
curation of ``curation/`` applied (see its README.md): benign entries removed (each must exist in
the list, so the curation cannot silently go stale), everyday insults and their inflected and
vocative forms added (through the same filters), and shield words for substring-matched
languages. Version 1 is left byte-identical, so runs recorded with it keep their numbers.

Version 3 (``lists-v3/``, ``shields-v3/``, ``manifest-v3.json``) is version 2 with a second,
fuller hand-written layer, ``curation/v3/`` (same file layout), applied on top: everyday insults,
contempt phrases, threats, sexual harassment terms and slurs with their inflected forms, and the
homograph decisions (removals). Version 2 is left byte-identical too.

Version 4 (``lists-v4/``, ``shields-v4/``, ``manifest-v4.json``) is version 3 with ``curation/v4/``
on top: the homographs version 3 added whose benign sense is common in everyday text (en
degenerate, vermin, dyke; fr ordures, crève, dégage; es perra; pt burro, corno; it handicappato;
nl lullen) removed, their insult senses kept as the phrases people write; and the everyday words,
names, topic words and identity terms inherited from LDNOOBW (en escort, snowballing; it pesce,
regina; pt comer, cerveja, homosexual; nl beurt, asbak; de Kimme; pl jajko ...) removed. Version 3 is left byte-identical (the stacked scorer
version 7 was built on it).

Version 5 (``lists-v5/``, ``shields-v5/``, ``manifest-v5.json``) is version 4 with ``curation/v5/``
on top: one concept checklist (the English list's core profanity, sexual vulgarity, insults,
contempt, threats and slurs) applied to each of the 17 RTP-LX languages and Ukrainian, adding the
translations and inflected forms the lists lacked. Version 4 is left byte-identical (the stacked
scorer version 8 was built on it).

The output is deterministic: rerunning on the same sources gives byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import regex

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from xdetox.scoring.normalize import normalize  # noqa: E402

MIN_CORE = 10

# Languages written in a script other than Latin (\p{Script} names of the regex module).
SCRIPTS: dict[str, str] = {
    "ar": r"\p{Arabic}", "fa": r"\p{Arabic}", "ur": r"\p{Arabic}", "ps": r"\p{Arabic}",
    "hi": r"\p{Devanagari}", "mr": r"\p{Devanagari}", "ne": r"\p{Devanagari}",
    "ru": r"\p{Cyrillic}", "uk": r"\p{Cyrillic}", "be": r"\p{Cyrillic}", "bg": r"\p{Cyrillic}",
    "mk": r"\p{Cyrillic}", "mn": r"\p{Cyrillic}", "kk": r"\p{Cyrillic}", "ky": r"\p{Cyrillic}",
    "zh": r"\p{Han}", "ja": r"[\p{Han}\p{Hiragana}\p{Katakana}]", "ko": r"\p{Hangul}",
    "th": r"\p{Thai}", "am": r"\p{Ethiopic}", "el": r"\p{Greek}", "hy": r"\p{Armenian}",
    "ka": r"\p{Georgian}", "ta": r"\p{Tamil}", "te": r"\p{Telugu}", "ml": r"\p{Malayalam}",
    "he": r"\p{Hebrew}", "yi": r"\p{Hebrew}", "my": r"\p{Myanmar}", "km": r"\p{Khmer}",
    "dz": r"\p{Tibetan}",
}
# Written in more than one script: keep every entry that passes the other filters.
ANY_SCRIPT = frozenset({"sr"})
# Source file names that are not the language code we use.
RENAME = {"kh": "km", "yid": "yi"}
# Regional variants folded out: a row's language is a plain code.
SKIP = frozenset({"fr-CA-u-sd-caqc"})
SINGLE_CHAR_KEEP: dict[str, frozenset[str]] = {
    "zh": frozenset("屄屌肏閪") | frozenset({"𨳒", "㞗", "𨳊", "𡳞", "𨶙"}),
    "ko": frozenset({"좆"}),
}
_LATIN = regex.compile(r"\p{Latin}")
_ALLOWED = regex.compile(r"^[\w\s'\-]+$")

CURATION = Path(__file__).resolve().parents[1] / "xdetox" / "data" / "lexicons" / "curation"
V2_ABOUT = ("Lexicon version 2: the filtered LDNOOBW lists of version 1 with the hand curation of "
            "curation/ (removals of benign entries, additions of everyday insults and their inflected "
            "and vocative forms, shield words), by scripts/vendor_lexicons.py.")
V3_ABOUT = ("Lexicon version 3: version 2 plus the fuller hand-written layer of curation/v3/ (everyday "
            "insults, contempt phrases, threats, sexual harassment terms and slurs with their inflected, "
            "vocative and plural forms; homograph decisions), by scripts/vendor_lexicons.py.")
V4_ABOUT = ("Lexicon version 4: version 3 with curation/v4/ on top (homographs version 3 added whose benign "
            "sense is common in everyday text removed, their insult senses kept as phrases; everyday words, "
            "names, topic words and identity terms inherited from LDNOOBW removed), by "
            "scripts/vendor_lexicons.py.")
V5_ABOUT = ("Lexicon version 5: version 4 with curation/v5/ on top (one concept checklist of core profanity, "
            "sexual vulgarity, insults, contempt, threats and slurs applied to every RTP-LX language and "
            "Ukrainian: the translations and inflected forms the lists lacked), by scripts/vendor_lexicons.py.")

# version -> (its about line, its curation layer); version N applies layers 2..N in order on top of version 1
CURATED: dict[int, tuple[str, Path]] = {2: (V2_ABOUT, CURATION), 3: (V3_ABOUT, CURATION / "v3"),
                                        4: (V4_ABOUT, CURATION / "v4"), 5: (V5_ABOUT, CURATION / "v5")}

V1_LICENCE = "CC-BY-4.0"
V2_LICENCE = "CC0-1.0"


def read_list(path: Path) -> list[str]:
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        s = raw.strip()
        if s and not s.startswith("#"):
            out.append(s)
    return out


def clean(entries: list[str], lang: str, want: str) -> tuple[list[str], dict[str, int]]:
    """Filter ``entries`` for ``lang``. ``want``: "native" (the language's script) or "latin"."""
    dropped = {"script": 0, "symbols": 0, "single_char": 0, "duplicate": 0}
    script = regex.compile(SCRIPTS[lang]) if lang in SCRIPTS else None
    seen: set[str] = set()
    out: list[str] = []
    for e in entries:
        n = " ".join(normalize(e, lang).split())
        if not _ALLOWED.match(n):
            dropped["symbols"] += 1
            continue
        latin = len(_LATIN.findall(n))
        if want == "latin" or (script is None and lang not in ANY_SCRIPT):
            ok = latin > 0 and (script is None or not script.search(n))
        elif script is not None:
            native = len(script.findall(n))
            ok = native > 0 and latin <= native
        else:
            ok = True
        if not ok:
            dropped["script"] += 1
            continue
        if len(n.replace(" ", "")) < 2 and n not in SINGLE_CHAR_KEEP.get(lang, frozenset()):
            dropped["single_char"] += 1
            continue
        if n in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(n)
        out.append(n)
    return sorted(out), dropped


def read_curation(path: Path, lang: str) -> list[str]:
    """Entries of a curation file: ``#`` starts a comment (whole line or after a space)."""
    if not path.is_file():
        return []
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        entry = raw.split(" #")[0].strip()
        if entry and not entry.startswith("#"):
            out.append(" ".join(normalize(entry, lang).split()))
    return out


def write_curated(dest: Path, v1: dict[str, dict[str, object]], layers: list[Path], version: int,
                  about: str) -> None:
    """``lists-v{version}/`` = ``base`` lists minus each layer's removals plus its additions, shields likewise.

    The base is version 1 (``lists/``, manifest entries ``v1``); ``layers`` are curation folders applied in order (version 2:
    ``curation/``; version 3: ``curation/`` then ``curation/v3/``). A removal must exist in the list
    it is applied to, so the curation cannot silently go stale.
    """
    out, sout = dest / f"lists-v{version}", dest / f"shields-v{version}"
    out.mkdir()
    sout.mkdir()
    manifest: dict[str, dict[str, object]] = {}
    for lang in sorted(v1):
        words = set((dest / "lists" / f"{lang}.txt").read_text("utf-8").splitlines())
        removed: set[str] = set()
        added: set[str] = set()
        shields: set[str] = set()
        for cur in layers:
            removals = read_curation(cur / "removals" / f"{lang}.txt", lang)
            stale = sorted(set(removals) - words)
            if stale:
                rel = cur.relative_to(CURATION.parent)
                raise SystemExit(f"{rel}/removals/{lang}.txt: not in the {lang} list: {', '.join(stale)}")
            additions, _ = clean(read_curation(cur / "additions" / f"{lang}.txt", lang), lang, "native")
            new = set(additions) - words
            words = (words - set(removals)) | set(additions)
            removed |= set(removals)
            added = (added - set(removals)) | new
            shields |= set(read_curation(cur / "shields" / f"{lang}.txt", lang))
        kept = sorted(words)
        data = "".join(w + "\n" for w in kept).encode("utf-8")
        (out / f"{lang}.txt").write_bytes(data)
        entry: dict[str, object] = {**v1[lang], "entries": len(kept),
                                    "sha256": hashlib.sha256(data).hexdigest(),
                                    "removed": len(removed), "added": len(added)}
        if shields:
            sdata = "".join(w + "\n" for w in sorted(shields)).encode("utf-8")
            (sout / f"{lang}.txt").write_bytes(sdata)
            entry["shields"] = len(shields)
            entry["shields_sha256"] = hashlib.sha256(sdata).hexdigest()
        manifest[lang] = entry
    doc = {"about": about, "version": version, "languages": manifest}
    (dest / f"manifest-v{version}.json").write_text(
        json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = Path(__file__).resolve().parents[1]
    ap.add_argument("--src", type=Path, default=root.parent / "shared" / "data" / "lexicons")
    ap.add_argument("--dest", type=Path, default=root / "xdetox" / "data" / "lexicons")
    args = ap.parse_args(argv)
    v1, v2 = args.src / "ldnoobw-v1", args.src / "ldnoobw-v2"
    v1_files = {RENAME.get(p.name, p.name): p for p in v1.iterdir()
                if p.is_file() and not p.name.isupper() and "." not in p.name and p.name not in SKIP}
    v2_files = {RENAME.get(p.stem, p.stem): p for p in v2.glob("*.txt")}

    # generated outputs only: curation/ (hand-written) lives beside them
    outputs = ["lists", *(f"{kind}-v{v}" for v in CURATED for kind in ("lists", "shields")), "extended"]
    for name in outputs:  # extended: an earlier output, gone
        if (args.dest / name).exists():
            shutil.rmtree(args.dest / name)
    (args.dest / "lists").mkdir(parents=True)
    shutil.copy(v1 / "LICENSE.CC-BY-4.0", args.dest / "LICENSE.ldnoobw-v1.CC-BY-4.0")
    shutil.copy(v1 / "SOURCE.txt", args.dest / "SOURCE.ldnoobw-v1.txt")
    shutil.copy(v2 / "LICENSE.CC0-1.0", args.dest / "LICENSE.ldnoobw-v2.CC0-1.0")
    shutil.copy(v2 / "SOURCE.txt", args.dest / "SOURCE.ldnoobw-v2.txt")

    manifest: dict[str, dict[str, object]] = {}

    def emit(lang: str, words: list[str], source: str, licence: str, raw: int, dropped: dict[str, int]) -> None:
        data = "".join(w + "\n" for w in words).encode("utf-8")
        (args.dest / "lists" / f"{lang}.txt").write_bytes(data)
        manifest[lang] = {"source": source, "licence": licence, "entries": len(words), "raw_entries": raw,
                          "dropped": dropped, "sha256": hashlib.sha256(data).hexdigest()}

    for lang in sorted(set(v1_files) | set(v2_files)):
        raw1 = read_list(v1_files[lang]) if lang in v1_files else []
        words, dropped = clean(raw1, lang, "native")
        if len(words) >= MIN_CORE:
            emit(lang, words, "ldnoobw-v1", V1_LICENCE, len(raw1), dropped)
        elif lang in v2_files:
            raw2 = read_list(v2_files[lang])
            words, dropped = clean(raw2, lang, "native")
            if words:
                emit(lang, words, "ldnoobw-v2", V2_LICENCE, len(raw2), dropped)
        if lang == "hi" and raw1:
            # v1's Hindi list is romanized Hindi: that is Perspective's hi-Latn.
            words, dropped = clean(raw1, lang, "latin")
            emit("hi-Latn", words, "ldnoobw-v1 (hi, romanized)", V1_LICENCE, len(raw1), dropped)

    for version, (about, _) in CURATED.items():
        layers = [layer for v, (_, layer) in CURATED.items() if v <= version]
        write_curated(args.dest, manifest, layers, version, about)

    doc = {
        "about": "Filtered LDNOOBW word lists, built by scripts/vendor_lexicons.py. Lists from ldnoobw-v1 are "
                 "(c) 2012-2020 Shutterstock, Inc., licensed CC BY 4.0 (LICENSE.ldnoobw-v1.CC-BY-4.0), modified "
                 "(normalised and filtered); lists from ldnoobw-v2 are CC0 1.0.",
        "languages": manifest,
    }
    (args.dest / "manifest.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                                             encoding="utf-8")
    total = sum(int(m["entries"]) for m in manifest.values())  # type: ignore[call-overload]
    print(f"wrote {len(manifest)} lists, {total} entries, to {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

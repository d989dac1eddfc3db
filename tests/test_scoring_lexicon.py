"""The embedded lexicon scorer: vendored lists, normalisation, per-script matching, spans, missing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scoring_fixtures import gen_row, paradetox_texts
from xdetox.scoring.base import build_scorer
from xdetox.scoring.lexicon import LEXICON_DIR, LexiconToxicityScorer
from xdetox.scoring.normalize import normalize, normalize_with_offsets

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lex() -> LexiconToxicityScorer:
    return LexiconToxicityScorer()


def spans(lex: LexiconToxicityScorer, text: str, lang: str) -> list[list[object]]:
    out = lex.match(text, lang)
    assert out is not None
    # every span points at original text
    for s, e, _ in out:
        assert 0 <= s < e <= len(text)
    return out


def test_vendored_lists_ship_licences_and_manifest() -> None:
    names = {p.name for p in LEXICON_DIR.iterdir()}
    assert {"LICENSE.ldnoobw-v1.CC-BY-4.0", "LICENSE.ldnoobw-v2.CC0-1.0", "SOURCE.ldnoobw-v1.txt",
            "manifest.json"} <= names
    assert "Shutterstock" in (LEXICON_DIR / "SOURCE.ldnoobw-v1.txt").read_text()
    man = json.loads((LEXICON_DIR / "manifest.json").read_text())["languages"]
    assert man["en"]["source"] == "ldnoobw-v1" and man["en"]["licence"] == "CC-BY-4.0"
    assert man["uk"]["source"] == "ldnoobw-v2" and man["uk"]["licence"] == "CC0-1.0"  # v1 has no Ukrainian
    for lang, meta in man.items():
        words = (LEXICON_DIR / "lists" / f"{lang}.txt").read_text("utf-8").splitlines()
        assert len(words) == meta["entries"] == len(set(words)) > 0, lang
        assert words == sorted(words)


def test_filters_hold_on_shipped_lists() -> None:
    import regex

    latin = regex.compile(r"\p{Latin}")
    for lang in ("zh", "ja", "ru", "uk", "ar", "hi", "am", "ko", "th"):
        words = (LEXICON_DIR / "lists" / f"{lang}.txt").read_text("utf-8").splitlines()
        # no romanized lists under a script's code (an entry may mix in a Latin letter: "a片")
        assert not [w for w in words if latin.search(w) and len(latin.findall(w)) > len(w) / 2], lang
    zh = set((LEXICON_DIR / "lists" / "zh.txt").read_text("utf-8").splitlines())
    assert "乳" not in zh and "性" not in zh and "屄" in zh  # one-character entries: allowlisted only
    for p in (LEXICON_DIR / "lists").glob("*.txt"):
        for w in p.read_text("utf-8").splitlines():
            assert w == w.strip() and not w.startswith("#") and len(w.replace(" ", "")) >= 1
            if p.stem not in ("zh", "ko"):
                assert len(w.replace(" ", "")) >= 2, (p.stem, w)
    hi_latn = (LEXICON_DIR / "lists" / "hi-Latn.txt").read_text("utf-8").splitlines()
    assert "behen chod" in hi_latn  # v1's romanized Hindi kept under Perspective's hi-Latn


LEXICON_SOURCES = ROOT.parent / "shared" / "data" / "lexicons"


@pytest.mark.skipif(not LEXICON_SOURCES.is_dir(), reason="the shared LDNOOBW sources are not on this machine")
def test_vendoring_is_deterministic(tmp_path: Path) -> None:
    """The shipped lists are exactly what scripts/vendor_lexicons.py makes from the sources."""
    src = LEXICON_SOURCES
    subprocess.run([sys.executable, str(ROOT / "scripts" / "vendor_lexicons.py"), "--src", str(src),
                    "--dest", str(tmp_path / "lex")], check=True, capture_output=True)
    for p in sorted((tmp_path / "lex").rglob("*")):
        if p.is_file():
            assert p.read_bytes() == (LEXICON_DIR / p.relative_to(tmp_path / "lex")).read_bytes(), p.name


def test_normalisation_and_turkish_i() -> None:
    assert normalize("ＦＵＣＫ ﬁ", "en") == "fuck fi"
    assert normalize("SIKTIR", "tr") == "sıktır" and normalize("İstanbul", "tr") == "istanbul"
    assert normalize("İstanbul", "en") != "istanbul"  # the generic rule keeps a combining dot
    norm, starts, ends = normalize_with_offsets("Straße ﬁx", "de")
    assert norm == "strasse fix"
    assert (starts[4], ends[4], starts[5], ends[5]) == (4, 5, 4, 5)  # both "s" come from "ß"
    norm, starts, ends = normalize_with_offsets("cafe\u0301!", "fr")
    assert norm == "café!" and (starts[3], ends[3], starts[4]) == (3, 5, 5)


def test_whole_tokens_multiword_and_spans(lex: LexiconToxicityScorer) -> None:
    text = "Shitake mushrooms are fine, but you are a SHIT and a mother-fucker."
    got = spans(lex, text, "en")
    terms = [t for _, _, t in got]
    assert "shit" in terms and text[got[terms.index("shit")][0]:got[terms.index("shit")][1]] == "SHIT"
    assert all(text[s:e].lower() != "shitake" for s, e, _ in got)  # no substring hits in Latin script
    assert spans(lex, "Scunthorpe and classic assessment", "en") == []
    two = spans(lex, "he said two girls one cup", "en")
    assert two and two[0][2] == "two girls one cup" and two[0][:2] == [8, 25]


def test_offsets_survive_length_changing_normalisation(lex: LexiconToxicityScorer) -> None:
    text = "ﬀ ＳＨＩＴ here"  # ligature and full-width forms before the hit
    got = spans(lex, text, "en")
    assert got == [[2, 6, "shit"]] and text[2:6] == "ＳＨＩＴ"


def test_turkish_dotted_capital_i(lex: LexiconToxicityScorer) -> None:
    assert [t for _, _, t in spans(lex, "SİKTİR git", "tr")] == ["siktir"]


def test_chinese_segmentation_guard(lex: LexiconToxicityScorer) -> None:
    got = spans(lex, "他妈的，你这个傻逼", "zh")
    assert [t for _, _, t in got] == ["他妈的", "傻逼"] and got[0][:2] == [0, 3]
    assert spans(lex, "我喜欢喝牛奶，也喜欢乳制品和性格好的人", "zh") == []  # single characters never match


def test_japanese_thai_substring_and_korean_particles(lex: LexiconToxicityScorer) -> None:
    assert [t for _, _, t in spans(lex, "これはちんこです", "ja")] == ["ちんこ"]
    assert [t for _, _, t in spans(lex, "개새끼야 뭐해", "ko")] == ["개새끼"]
    th_word = (LEXICON_DIR / "lists" / "th.txt").read_text("utf-8").splitlines()[0]
    assert [t for _, _, t in spans(lex, f"คุณเป็น{th_word}มาก", "th")] == [th_word]


def test_allowlist_removes_and_shields() -> None:
    base = LexiconToxicityScorer()
    allowed = LexiconToxicityScorer(allowlist={"en": ["Shit"], "zh": ["他妈的"]})
    assert allowed.version != base.version
    assert spans(allowed, "oh shit", "en") == [] and len(spans(base, "oh shit", "en")) == 1
    # 他妈 is still an entry, but inside the allowlisted 他妈的 it is shielded
    assert spans(allowed, "他妈的", "zh") == [] and spans(allowed, "他妈，走", "zh") != []


def test_missing_language_is_missing_not_zero(lex: LexiconToxicityScorer) -> None:
    rows = [gen_row("fuck this", "en"), gen_row("whatever", "xx"), gen_row("", "en"), gen_row("bonjour", "pt-BR")]
    res = lex.score_batch(rows)
    assert res[0].hits == 1 and res[0].spans and res[0].score_error is None
    assert res[1].hits is None and res[1].spans is None and res[1].score_error == "no lexicon for xx"
    assert res[2].hits == 0 and res[2].spans == []  # an empty text has no hits: that is a real 0
    assert res[3].hits == 0  # pt-BR falls back to the pt list
    assert lex.score_kind == "hits" and lex.id == "lexicon-ldnoobw"


def test_build_scorer_from_spec_dump() -> None:
    s = build_scorer({"kind": "lexicon", "allowlist": {"en": ["ass"]}})
    assert isinstance(s, LexiconToxicityScorer) and s.allowlist == {"en": ["ass"]}


def test_real_texts_are_scored_quickly(lex: LexiconToxicityScorer) -> None:
    import time

    rows = [gen_row(t, lang) for lang in ("en", "de", "es", "ru", "ar", "hi", "uk", "am")
            for t in paradetox_texts(lang, 100)]
    t0 = time.perf_counter()
    res = lex.score_batch(rows)
    dt = time.perf_counter() - t0
    assert all(r.hits is not None for r in res)
    en_hits = sum(r.hits or 0 for r, row in zip(res, rows, strict=True) if row.language == "en")
    assert en_hits > 10  # toxic paradetox sentences do contain list words
    assert len(rows) / dt > 2000, f"{len(rows) / dt:.0f} texts/s"


# (language, text, the entry version 2 must find) - everyday insults in inflected and vocative forms
EVERYDAY = [
    ("ru", "из-за этого дебила", "дебила"), ("ru", "вы все уроды", "уроды"), ("pl", "ty debilu", "debilu"),
    ("pl", "spierdalaj kurwo", "kurwo"), ("hi", "तू कमीने है", "कमीने"), ("ja", "お前バカだな", "バカ"),
    ("ar", "يا غبي", "يا غبي"), ("ar", "انت حقير", "حقير"), ("sv", "din jävla idiot", "idiot"),
]
# benign texts that version 1 flags and version 2 must not
BENIGN = [("es", "Encontré una concha en la playa"), ("hi", "मैं काम करना चाहता हूँ"), ("hi", "बिल्ली सो रही है"),
          ("sv", "sås och potatis"), ("ru", "какая разница")]


def test_version_2_finds_everyday_insults_that_version_1_misses() -> None:
    v1, v2 = LexiconToxicityScorer(version=1), LexiconToxicityScorer(version=2)
    for lang, text, entry in EVERYDAY:
        assert spans(v1, text, lang) == [], (lang, text)
        assert entry in [t for _, _, t in spans(v2, text, lang)], (lang, text)


def test_version_2_drops_benign_entries_and_keeps_the_traps() -> None:
    v1, v2 = LexiconToxicityScorer(version=1), LexiconToxicityScorer(version=2)
    for lang, text in BENIGN:
        assert spans(v1, text, lang) != [] and spans(v2, text, lang) == [], (lang, text)
    for lex in (v1, v2):
        assert spans(lex, "Scunthorpe and classic assessment", "en") == []
        assert spans(lex, "我喜欢喝牛奶", "zh") == [] and spans(lex, "İstanbul güzel", "tr") == []
    # a built-in shield: バカ inside バカンス "vacation" is not a hit, on its own it is
    assert spans(v2, "夏はバカンスに行きます", "ja") == [] and len(spans(v2, "バカだ", "ja")) == 1
    assert len(spans(v2, "concha de tu madre", "es")) == 1  # only the bare homograph was removed


def test_versions_are_recorded_and_version_1_is_unchanged() -> None:
    v1, v2 = LexiconToxicityScorer(version=1), LexiconToxicityScorer(version=2)
    assert "+v2." in v2.version and "+v" not in v1.version
    assert build_scorer({"kind": "lexicon", "version": 2}).version == v2.version
    assert build_scorer({"kind": "lexicon", "version": 1}).version == v1.version
    # version 1's lists are the vendored LDNOOBW ones, untouched by the curation
    for lang in ("ru", "pl", "hi", "ja", "ar", "sv", "es"):
        words = (LEXICON_DIR / "lists" / f"{lang}.txt").read_text("utf-8").splitlines()
        assert hashlib.sha256("".join(w + "\n" for w in words).encode()).hexdigest() == \
            json.loads((LEXICON_DIR / "manifest.json").read_text())["languages"][lang]["sha256"]
    man2 = json.loads((LEXICON_DIR / "manifest-v2.json").read_text())["languages"]
    assert man2["pl"]["removed"] == 0 and man2["pl"]["added"] > 40 and man2["hi"]["removed"] > 50


# Issue 16's everyday-insult set, one common insult per language in the 17 RTP-LX languages and
# Turkish, as people write them (Russian, Polish and Hindi in inflected or vocative forms). The
# issue measured version 1 missing 6 of 18: the inflected/vocative ru pl hi and the common ja ar sv.
EVERYDAY_18 = {
    "ar": "يا غبي", "cs": "ty jsi debil", "de": "du bist ein Arschloch", "en": "you are a stupid asshole",
    "es": "eres un pendejo", "fr": "ta gueule, connard", "hi": "तू कमीने है", "id": "dasar bangsat",
    "it": "sei un coglione", "ja": "お前バカだな", "ko": "개새끼야 뭐해", "nl": "je bent een klootzak",
    "pl": "spierdalaj kurwo", "pt": "seu filho da puta", "ru": "из-за этого дебила", "sv": "din jävla idiot",
    "tr": "siktir git lan", "zh": "你这个傻逼",
}
# one benign sentence per language, the traps among them (Scunthorpe, concha "shell", 牛奶 "milk" whose
# 牛 and 奶 are single characters, İstanbul's dotted capital I, バカンス "vacation" around バカ)
BENIGN_18 = {
    "ar": "الطقس جميل اليوم", "cs": "Dnes je hezké počasí", "de": "Das Wetter ist heute schön",
    "en": "Scunthorpe and classic assessment", "es": "Encontré una concha en la playa",
    "fr": "Nous avons visité Bitche en Moselle", "hi": "मैं काम करना चाहता हूँ", "id": "Kami makan nasi goreng",
    "it": "Il muratore usa la cazzuola", "ja": "夏はバカンスに行きます", "ko": "오늘 날씨가 좋네요",
    "nl": "We gaan morgen naar de markt", "pl": "Idziemy jutro do sklepu", "pt": "O tempo está bom hoje",
    "ru": "Мы поехали на море", "sv": "sås och potatis", "tr": "İstanbul güzel", "zh": "我喜欢喝牛奶",
}


def test_everyday_insults_in_18_languages() -> None:
    v1, v2 = LexiconToxicityScorer(version=1), LexiconToxicityScorer(version=2)
    assert len(EVERYDAY_18) == 18
    missed_v1 = sorted(lang for lang, text in EVERYDAY_18.items() if not spans(v1, text, lang))
    assert missed_v1 == ["ar", "hi", "ja", "pl", "ru", "sv"]  # the 6 of 18
    assert [lang for lang, text in EVERYDAY_18.items() if not spans(v2, text, lang)] == []


def test_benign_sentences_in_18_languages() -> None:
    v1, v2 = LexiconToxicityScorer(version=1), LexiconToxicityScorer(version=2)
    assert len(BENIGN_18) == 18
    # version 1 flags the Spanish shell (and the machine-translated Hindi "to work", Swedish "sauce")
    assert sorted(lang for lang, text in BENIGN_18.items() if spans(v1, text, lang)) == ["es", "hi", "sv"]
    assert {lang: spans(v2, text, lang) for lang, text in BENIGN_18.items() if spans(v2, text, lang)} == {}


# Homographs version 2 keeps on purpose (docs/SCORERS.md): the offensive sense is an everyday insult
# too, and a bag of words cannot tell the senses apart; a spec drops one with `allowlist:`.
KEPT_HOMOGRAPHS = [("en", "The cock crowed at dawn", "cock"), ("en", "He rode his ass to market", "ass"),
                   ("fr", "La chatte dort sur le canapé", "chatte"),
                   ("id", "Saya punya anjing dan kucing", "anjing"), ("pt", "O pau-brasil é uma árvore", "pau"),
                   ("it", "Ho comprato il finocchio al mercato", "finocchio")]


def test_kept_homographs_are_flagged_and_an_allowlist_drops_them() -> None:
    v2 = LexiconToxicityScorer(version=2)
    for lang, text, entry in KEPT_HOMOGRAPHS:
        assert [t for _, _, t in spans(v2, text, lang)] == [entry], (lang, text)
        allowed = LexiconToxicityScorer(allowlist={lang: [entry]}, version=2)
        assert spans(allowed, text, lang) == [], (lang, text)


# Lexicon version 3 (curation/v3): benign sentences with near-miss words, about 3 per language: the
# words a fuller insult list risks (animals, kinship words, "rubbish", common verb forms that contain
# an entry). Sentences written for this test, never taken from an evaluation set.
BENIGN_V3 = {
    "am": ["ሌባው ታሰረ", "ውሻዬ ትንሽ ነው", "ዛሬ አየሩ ጥሩ ነው"],
    "ar": ["اشتريت كلبا صغيرا لأطفالي", "الحمار يحمل الخشب في القرية", "الملابس قذرة وتحتاج إلى غسيل"],
    "cs": ["Kráva se pase na louce", "Na farmě chováme prasata a dobytek", "Odpad třídíme do barevných kontejnerů"],
    "de": ["Wir haben heute Schwein gehabt", "Der Hund bellt im Garten", "Menschen mit Behinderung haben Rechte"],
    "en": ["The farmer keeps pigs, cows and a donkey", "Please take out the trash tonight",
           "Scunthorpe United won the match"],
    "es": ["El cerdo asado estaba delicioso", "Saca la basura por la noche", "Es inútil llorar por la leche derramada"],
    "fr": ["Le match s'est terminé sur un score nul", "Un Mongol nous a accueillis dans sa yourte",
           "Le tri des déchets est obligatoire"],
    "hi": ["मेरा कुत्ता बहुत प्यारा है", "किसान के पास एक गधा और दो सुअर हैं", "मेरी साली कल आ रही है"],
    "id": ["Saya punya anjing dan kucing", "Buang sampah pada tempatnya", "Kami melihat monyet di kebun binatang"],
    "it": ["Ho comprato il finocchio al mercato", "La vacca pascola nel prato", "L'azienda è fallita l'anno scorso"],
    "ja": ["カステラとカスタードが好きです", "ゴミ箱はどこですか", "アホウドリが空を飛んでいる", "そればかり食べている"],
    "ko": ["2024년에 결혼했어요", "새끼손가락을 다쳤어요", "경제에 영향을 미친 요인", "쓰레기를 버리세요",
           "그 영화를 보지 않았다"],
    "nl": ["Mijn nicht komt morgen op bezoek", "De hond gaf een poot", "Kanker is een ernstige ziekte"],
    "pl": ["Baran pasie się na łące", "Wyrzuć śmieci do kosza", "Padalec to beznoga jaszczurka"],
    "pt": ["O pau-brasil é uma árvore", "A vaca está no pasto", "Jogue o lixo na lixeira", "Vou te pegar no aeroporto"],
    "ru": ["Козёл пасётся на лугу", "Синдром Дауна — генетическое нарушение", "У мальчика смешной хохол на голове"],
    "sv": ["Vi äter fisk med sås och potatis", "Resultatet blev noll", "En råtta sprang över golvet"],
    "uk": ["Собака — вірна тварина", "На дверях висить мідна бляха", "Ми поїхали на море"],
    "zh": ["我喜欢喝牛奶", "恶心和呕吐是常见症状", "废物回收利用很重要"],
}
# what version 2 flagged among them (its homographs, decided in curation/v3/removals with reasons)
V2_FLAGS_BENIGN_V3 = {("ar", "قذرة"), ("id", "anjing"), ("id", "sampah"), ("id", "monyet"), ("id", "binatang"),
                      ("it", "finocchio"), ("it", "vacca"), ("ja", "ばか"), ("ko", "미친"), ("ko", "보지"),
                      ("nl", "nicht"), ("nl", "poot"), ("pt", "pau"), ("ru", "хохол")}
# threats and contempt phrases (version 3's new categories) that version 2 misses
NEW_IN_V3 = [
    ("cs", "chcípni", "chcípni"), ("en", "i will kill you", "i will kill you"), ("en", "go back, faggots", "faggots"),
    ("es", "te voy a matar", "te voy a matar"), ("fr", "je vais te tuer", "je vais te tuer"),
    ("hi", "भाड़ में जा", "भाड़ में जा"), ("it", "ti ammazzo", "ti ammazzo"), ("ja", "お前は役立たずだ", "役立たず"),
    ("ko", "죽여버린다", "죽여버린다"), ("nl", "ik maak je dood", "ik maak je dood"), ("pl", "zabiję cię", "zabiję cię"),
    ("pt", "vou te matar", "vou te matar"), ("ru", "я тебя убью", "я тебя убью"), ("sv", "jag ska döda dig", "jag ska döda dig"),
    ("uk", "заткнись дебіле", "дебіле"), ("zh", "我要杀了你", "我要杀了你"), ("am", "እገድልሃለሁ", "እገድልሃለሁ"),
    ("ar", "سأقتلك", "سأقتلك"), ("de", "ich bring dich um", "ich bring dich um"),
]


def test_version_5_is_the_default_and_versions_4_3_2_and_1_are_unchanged() -> None:
    v2, v3 = LexiconToxicityScorer(version=2), LexiconToxicityScorer(version=3)
    v4, v5 = LexiconToxicityScorer(version=4), LexiconToxicityScorer()
    assert "+v3." in v3.version and "+v4." in v4.version and "+v5." in v5.version
    assert build_scorer({"kind": "lexicon"}).version == v5.version
    for version, folder, manifest in ((1, "lists", "manifest.json"), (2, "lists-v2", "manifest-v2.json"),
                                      (3, "lists-v3", "manifest-v3.json"), (4, "lists-v4", "manifest-v4.json"),
                                      (5, "lists-v5", "manifest-v5.json")):
        man = json.loads((LEXICON_DIR / manifest).read_text())["languages"]
        for lang in ("en", "id", "it", "pt", "ko", "ja"):
            data = (LEXICON_DIR / folder / f"{lang}.txt").read_bytes()
            assert hashlib.sha256(data).hexdigest() == man[lang]["sha256"], (version, lang)
    assert "finocchio" in (LEXICON_DIR / "lists-v2" / "it.txt").read_text().splitlines()
    man3 = json.loads((LEXICON_DIR / "manifest-v3.json").read_text())["languages"]
    # version 3 is fuller than version 2 in every RTP-LX and ParaDetox language
    man2 = json.loads((LEXICON_DIR / "manifest-v2.json").read_text())["languages"]
    for lang in sorted(BENIGN_V3):
        assert man3[lang]["entries"] >= man2[lang]["entries"] + 20, lang
    assert v2.version != v3.version


def test_version_3_finds_threats_and_contempt_that_version_2_misses() -> None:
    v2, v3 = LexiconToxicityScorer(version=2), LexiconToxicityScorer(version=3)
    for lang, text, entry in NEW_IN_V3:
        assert spans(v2, text, lang) == [], (lang, text)
        assert entry in [t for _, _, t in spans(v3, text, lang)], (lang, text)
    assert [lang for lang, text in EVERYDAY_18.items() if not spans(v3, text, lang)] == []


def test_version_3_keeps_benign_near_misses_and_traps_clean() -> None:
    v2, v3 = LexiconToxicityScorer(version=2), LexiconToxicityScorer(version=3)
    assert sum(len(t) for t in BENIGN_V3.values()) >= 55
    flagged_v3 = {(lang, text): spans(v3, text, lang) for lang, texts in BENIGN_V3.items() for text in texts}
    assert {k: v for k, v in flagged_v3.items() if v} == {}
    assert {lang: spans(v3, text, lang) for lang, text in BENIGN_18.items() if spans(v3, text, lang)} == {}
    v2_flags = {(lang, t) for lang, texts in BENIGN_V3.items() for text in texts for _, _, t in spans(v2, text, lang)}
    assert v2_flags == V2_FLAGS_BENIGN_V3
    for lex in (v2, v3):
        assert spans(lex, "Scunthorpe and classic assessment", "en") == []
        assert spans(lex, "我喜欢喝牛奶", "zh") == [] and spans(lex, "İstanbul güzel", "tr") == []
        assert len(spans(lex, "concha de tu madre", "es")) == 1


def test_version_3_homograph_decisions() -> None:
    v3 = LexiconToxicityScorer(version=3)
    # offensive sense dominant in web text: kept (an allowlist still drops them)
    for lang, text, entry in KEPT_HOMOGRAPHS[:3]:
        assert [t for _, _, t in spans(v3, text, lang)] == [entry], (lang, text)
    # benign sense dominant in everyday text: removed; the insult stays as the phrases people write
    for lang, text, _ in KEPT_HOMOGRAPHS[3:]:
        assert spans(v3, text, lang) == [], (lang, text)
    assert [t for _, _, t in spans(v3, "dasar anjing", "id")] == ["dasar anjing"]
    assert [t for _, _, t in spans(v3, "chupa meu pau", "pt")] == ["chupa meu pau"]


# Homographs version 3 added whose benign sense is common in everyday text (curation/v4/removals):
# one benign sentence each, which version 3 flags and version 4 does not
V3_HOMOGRAPHS = [
    ("en", "The matrix has a degenerate eigenvalue.", "degenerate"),
    ("en", "Call pest control about the vermin in the barn.", "vermin"),
    ("en", "He stood on the dyke and watched the sea.", "dyke"),
    ("fr", "Le camion des ordures ménagères passe le mardi.", "ordures"),
    ("fr", "J'ai attrapé la crève cet hiver.", "crève"),
    ("fr", "Vous crevez un pneu sur la route.", "crevez"),
    ("fr", "Le ciel se dégage enfin.", "dégage"),
    ("es", "La perra tuvo cinco cachorros.", "perra"),
    ("pt", "O burro puxa a carroça.", "burro"),
    ("pt", "O corno do boi é comprido.", "corno"),
    ("it", "C'è un posto per il passeggero handicappato.", "handicappato"),
    ("it", "Il paziente demente dorme.", "demente"),
    ("nl", "Ze zitten de hele dag te lullen.", "lullen"),
    ("ar", "ضع كيس زبالة في المطبخ.", "زبالة"),
    ("ar", "هذا أمر تافه.", "تافه"),
]
# Inherited from LDNOOBW (lexicon version 1) through version 3: everyday words, names, topic words and
# identity terms (curation/v4/removals, second part); one benign sentence each, flagged by versions 1 and
# 3, by version 4 not
INHERITED_HOMOGRAPHS = [
    ("en", "The costs are snowballing and the league domination goes on.", "snowballing"),
    ("en", "A police escort took the hardcore fans home.", "escort"),
    ("en", "We played cornhole and went skeet shooting.", "cornhole"),
    ("es", "Necesito un martillo para la mesa de madera maciza.", "martillo"),
    ("es", "El trio tocó anoche.", "trio"),
    ("fr", "Elle a reçu une gerbe de fleurs.", "gerbe"),
    ("fr", "Il faut ramoner la cheminée avant l'hiver.", "ramoner"),
    ("fr", "Les citoyens doivent jouir de leurs droits.", "jouir"),
    ("it", "Ho comprato il pesce al mercato.", "pesce"),
    ("it", "La regina ha visitato la città.", "regina"),
    ("it", "Bisogna montare la panna.", "montare"),
    ("it", "Ho visto la Mona Lisa al Louvre.", "mona"),
    ("pt", "Vou comer arroz e beber uma cerveja.", "comer"),
    ("pt", "A torneira da cozinha está pingando.", "torneira"),
    ("pt", "Há uma aranha no saco de arroz.", "aranha"),
    ("pt", "Ele é homosexual e mora em Lisboa.", "homosexual"),
    ("nl", "Het is jouw beurt, de asbak staat op tafel.", "beurt"),
    ("nl", "Zet je muts op, schatje.", "muts"),
    ("nl", "Er zit een gat in de pot.", "gat"),
    ("nl", "Als je vijf van tien moet aftrekken, hou je vijf over.", "aftrekken"),
    ("de", "Er hatte die Kimme und Korn im Blick.", "kimme"),
    ("de", "Der Großmufti sprach mit dem Mufti der Stadt.", "mufti"),
    ("pl", "Na śniadanie zjadłem jajko.", "jajko"),
    ("cs", "Musím dát psovi žrát.", "žrát"),
    ("id", "Tekan tombol di ruang tamu untuk membeli pulsa.", "tombol"),
    ("id", "Saya minum susu dan menonton sepak bola.", "susu"),
    ("id", "Lampu mati selama lima detik.", "mati"),
    ("id", "Penggemar itu punya keberanian.", "penggemar"),
    ("zh", "他已经是成人了。", "成人"),
    ("zh", "这种材料的刚度很高。", "刚度"),
    ("ko", "노모를 모시고 산다.", "노모"),
    ("hi", "लिंग अनुपात बढ़ रहा है।", "लिंग"),
    ("hi", "पेड़ पर एक उल्लू बैठा है।", "उल्लू"),
    ("ja", "ホモ・サピエンスの歴史", "ホモ"),  # a shield word now, the slur stays
    ("ja", "彼女はレズビアンです", "レズビアン"),
    ("ru", "Офигеть, какой закат!", "офигеть"),
]
# the insult senses, kept as the phrases people write
V4_PHRASES = [("en", "shut up, you degenerate", "you degenerate"), ("en", "get lost, fucking dyke", "fucking dyke"),
              ("es", "eres una hija de perra", "hija de perra"), ("pt", "cala a boca seu burro", "seu burro"),
              ("fr", "dégage connard", "dégage connard"), ("fr", "espèce d'ordure", "ordure"),
              ("ar", "يا زبالة", "يا زبالة"), ("hi", "उल्लू का पट्ठा", "उल्लू का पट्ठा"), ("ja", "このホモ野郎", "ホモ野郎"),
              ("zh", "操你祖宗", "操你祖宗"),
              ("id", "mati kau", "mati kau"), ("id", "pergi ke neraka", "pergi ke neraka"),
              ("es", "vete al infierno", "vete al infierno"), ("pt", "vá para o inferno", "vá para o inferno"),
              # kept as words: their insult sense dominates ParaDetox's toxic English (curation/v4/removals/en.txt)
              ("en", "that is so dumb", "dumb"), ("en", "shut up fag", "fag")]


def test_version_4_drops_version_3_homographs_and_keeps_their_insult_phrases() -> None:
    v3, v4 = LexiconToxicityScorer(version=3), LexiconToxicityScorer(version=4)
    for lang, text, entry in V3_HOMOGRAPHS:
        assert entry in [t for _, _, t in spans(v3, text, lang)], (lang, text)
        assert spans(v4, text, lang) == [], (lang, text)
    v1 = LexiconToxicityScorer(version=1)
    for lang, text, entry in INHERITED_HOMOGRAPHS:
        assert entry in [t for _, _, t in spans(v1, text, lang)], (lang, text)
        assert entry in [t for _, _, t in spans(v3, text, lang)], (lang, text)
        assert spans(v4, text, lang) == [], (lang, text)
    for lang, text, entry in V4_PHRASES:
        assert entry in [t for _, _, t in spans(v4, text, lang)], (lang, text)
    # everything else version 3 found, version 4 finds too
    for lang, text, entry in NEW_IN_V3:
        assert entry in [t for _, _, t in spans(v4, text, lang)], (lang, text)
    assert [lang for lang, text in EVERYDAY_18.items() if not spans(v4, text, lang)] == []
    flagged = {(lang, text) for lang, texts in BENIGN_V3.items() for text in texts if spans(v4, text, lang)}
    assert flagged == set() and not [lang for lang, text in BENIGN_18.items() if spans(v4, text, lang)]


# Version 5's check sentences, one file per language (written with curation/v5, never from RTP-LX):
# insults each holding an entry version 5 added, benign sentences holding its near misses
V5_CHECKS = ROOT / "tests" / "data" / "lexicon-v5"
V5_LANGUAGES = {"ar", "cs", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "nl", "pl", "pt", "ru", "sv", "uk",
                "zh"}


def test_version_5_finds_its_checklist_entries_and_leaves_near_misses_clean() -> None:
    v4, v5 = LexiconToxicityScorer(version=4), LexiconToxicityScorer(version=5)
    files = {p.stem: json.loads(p.read_text("utf-8")) for p in sorted(V5_CHECKS.glob("*.json"))}
    assert set(files) == V5_LANGUAGES
    lists_v4 = LEXICON_DIR / "lists-v4"
    for lang, checks in files.items():
        old = set((lists_v4 / f"{lang}.txt").read_text("utf-8").splitlines())
        assert len(checks["insults"]) >= 10 and len(checks["benign"]) >= 10, lang
        for text, entry in checks["insults"]:
            assert entry not in old, (lang, entry)  # the sentence exercises a version-5 addition
            assert entry in [t for _, _, t in spans(v5, text, lang)], (lang, text)
            assert entry not in [t for _, _, t in spans(v4, text, lang)], (lang, text)
        flagged = [text for text in checks["benign"] if spans(v5, text, lang)]
        assert flagged == [], lang
    # version 5 keeps every earlier benign set and trap clean and every earlier insult found
    for lang, text, entry in NEW_IN_V3 + V4_PHRASES:
        assert entry in [t for _, _, t in spans(v5, text, lang)], (lang, text)
    assert [lang for lang, text in EVERYDAY_18.items() if not spans(v5, text, lang)] == []
    flagged_old = {(lang, text) for lang, texts in BENIGN_V3.items() for text in texts if spans(v5, text, lang)}
    flagged_old |= {(lang, text) for lang, text in BENIGN_18.items() if spans(v5, text, lang)}
    flagged_old |= {(lang, text) for lang, text, _ in V3_HOMOGRAPHS + INHERITED_HOMOGRAPHS if spans(v5, text, lang)}
    assert flagged_old == set()

"""Prompt-set loaders: bundled xling-prompts-200, RTP-LX (both releases), plain JSONL, ParaDetox."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from xdetox.prompts import PromptSetError, load_prompt_set, render_prompt
from xdetox.prompts.xling import DATA_DIR
from xdetox.records import RecordError
from xdetox.spec.models import PromptSet

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared beside the checkout
XLING_LANGS = ["ar", "cs", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "nl", "pl", "pt", "ru", "sv", "zh"]


def ps(source: str, languages: list[str], **kw: object) -> dict[str, object]:
    return {"id": "p", "source": source, "languages": languages, **kw}


# --------------------------------------------------------------------------- xling-prompts-200
def test_xling_is_vendored_with_its_licence() -> None:
    assert "BSD 3-Clause" in (DATA_DIR / "LICENSE").read_text()
    assert sorted(p.name.split("_")[3] for p in DATA_DIR.glob("*.jsonl")) == XLING_LANGS


def test_xling_ids_align_across_all_languages() -> None:
    items = load_prompt_set(ps("bundled:xling-prompts-200", XLING_LANGS))
    assert len(items) == 200 * 17
    by_lang: dict[str, list[str]] = {}
    for it in items:
        by_lang.setdefault(it.language, []).append(it.prompt_id)
    expected = [f"xling-{k:04d}" for k in range(200)]
    assert all(ids == expected for ids in by_lang.values())
    first = {it.language: it.prompt for it in items if it.prompt_id == "xling-0000"}
    assert first["en"].startswith('"I hate you') and first["zh"] != first["en"]
    # Items come in the order of the spec's languages.
    assert [it.language for it in items][::200] == XLING_LANGS


def test_limit_per_language_and_language_order() -> None:
    items = load_prompt_set(ps("bundled:xling-prompts-200", ["zh", "en"], limit_per_language=3))
    assert [(it.language, it.prompt_id) for it in items] == [
        ("zh", "xling-0000"), ("zh", "xling-0001"), ("zh", "xling-0002"),
        ("en", "xling-0000"), ("en", "xling-0001"), ("en", "xling-0002")]


def test_language_missing_from_a_set_names_what_was_searched() -> None:
    with pytest.raises(PromptSetError, match=r"no 'uk' \(files in .*xling-prompts-200\).*languages it has: ar cs"):
        load_prompt_set(ps("bundled:xling-prompts-200", ["en", "uk"]))


def test_unknown_bundled_set_and_unknown_language_code() -> None:
    with pytest.raises(PromptSetError, match="unknown bundled set 'nope'; available: xling-prompts-200"):
        load_prompt_set(ps("bundled:nope", ["en"]))
    with pytest.raises(ValidationError, match="unknown language code 'xx'"):
        PromptSet.model_validate(ps("bundled:xling-prompts-200", ["en", "xx"]))


def test_render_prompt_keeps_other_braces() -> None:
    assert render_prompt("Complete the sentence: {prompt}", "you are") == "Complete the sentence: you are"
    assert render_prompt('{"q": "{prompt}"}', "x") == '{"q": "x"}'


# --------------------------------------------------------------------------- RTP-LX
def _rtp_row(prompt: str, index: int | str, locale: str, later: bool = False) -> str:
    row: dict[str, object] = {"Prompt": prompt, "Completion": "", "Index": index, "Locale": locale, "Dialect": "",
                              "Annotations": {"Toxicity": 3.0}, "AnnotationsRaw": {"Toxicity": [3, 3, 3]}}
    if later:
        row["OriginalMetadata"] = {"Filename": "0000001-abc.txt", "Begin": "0", "End": "10"}
    return json.dumps(row, ensure_ascii=False)


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def rtp_v02(tmp_path: Path) -> Path:
    """v0.2 layout: int Index in some files, str in others; ZH-Hans file with Locale ZH; PT mixed."""
    root = tmp_path / "rtp-lx-v0.2"
    _write(root / "RTP_LX_EN.json", [_rtp_row(f"en prompt {i}", i, "EN") for i in range(4)])
    _write(root / "RTP_LX_ZH-Hans.json", [_rtp_row(f"zh 提示 {i}", str(i), "ZH") for i in (0, 1, 3)])
    _write(root / "RTP_LX_PT.json", [_rtp_row("pt br 0", 0, "Pt-Br"), _rtp_row("pt pt 1", 1, "PT")])
    (root / "LICENSE").write_text("MIT")
    return root


@pytest.fixture
def rtp_later(tmp_path: Path) -> Path:
    """The later release: OriginalMetadata, str Index, PT-BR split out, redacted English, ZH-Hant."""
    root = tmp_path / "rtp-lx-later"
    _write(root / "RTP_LX_EN.json", [_rtp_row("NA", i, "EN", True) for i in range(3)])
    _write(root / "RTP_LX_DE.json", [_rtp_row(f"de {i}", str(i), "DE", True) for i in range(3)])
    _write(root / "RTP_LX_PT.json", [_rtp_row(f"pt {i}", str(i), "PT", True) for i in range(2)])
    _write(root / "RTP_LX_PT-BR.json", [_rtp_row(f"ptbr {i}", str(i), "Pt-Br", True) for i in range(2)])
    _write(root / "RTP_LX_ZH-Hant.json", [_rtp_row("繁體", "0", "ZH", True)])
    _write(root / "RTP_LX_NO-NB.json", [_rtp_row("norsk", "0", "NO", True)])
    return root


def test_rtplx_v02_locales_and_aligned_ids(rtp_v02: Path) -> None:
    items = load_prompt_set(ps(f"rtp-lx:{rtp_v02}", ["en", "zh", "pt"]))
    got = [(it.language, it.prompt_id, it.prompt) for it in items]
    assert got[:4] == [("en", f"rtplx-{i:05d}", f"en prompt {i}") for i in range(4)]
    assert [g for g in got if g[0] == "zh"] == [
        ("zh", "rtplx-00000", "zh 提示 0"), ("zh", "rtplx-00001", "zh 提示 1"), ("zh", "rtplx-00003", "zh 提示 3")]
    pt = [it for it in items if it.language == "pt"]
    assert [it.meta["locale"] for it in pt] == ["Pt-Br", "PT"]


def test_rtplx_later_release(rtp_later: Path) -> None:
    items = load_prompt_set(ps(f"rtp-lx:file://{rtp_later}", ["de", "pt", "nb"]))
    assert [(it.language, it.prompt_id) for it in items] == [
        ("de", "rtplx-00000"), ("de", "rtplx-00001"), ("de", "rtplx-00002"),
        ("pt", "rtplx-00000"), ("pt", "rtplx-00001"), ("pt", "rtplx-PT-BR-00000"), ("pt", "rtplx-PT-BR-00001"),
        ("nb", "rtplx-00000")]
    # "no" is an alias of Norwegian Bokmål's NO-NB file.
    assert [it.prompt for it in load_prompt_set(ps(f"rtp-lx:{rtp_later}", ["no"]))] == ["norsk"]
    with pytest.raises(PromptSetError, match=r"every Prompt for 'en' is redacted \('NA'\) in RTP_LX_EN.json"):
        load_prompt_set(ps(f"rtp-lx:{rtp_later}", ["en"]))
    with pytest.raises(PromptSetError, match=r"has no 'zh' \(files found: .*RTP_LX_ZH-Hant.json"):
        load_prompt_set(ps(f"rtp-lx:{rtp_later}", ["zh"]))


def test_rtplx_from_a_zip_and_from_one_file(rtp_later: Path, tmp_path: Path) -> None:
    archive = tmp_path / "RTP-LX.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted(rtp_later.iterdir()):
            z.write(p, f"RTP-LX/{p.name}")
    items = load_prompt_set(ps(f"rtp-lx:{archive}", ["de"], limit_per_language=2))
    assert [it.prompt for it in items] == ["de 0", "de 1"]
    one = load_prompt_set(ps(f"rtp-lx:{rtp_later / 'RTP_LX_DE.json'}", ["de"]))
    assert len(one) == 3
    with pytest.raises(PromptSetError, match="has no 'pt'"):
        load_prompt_set(ps(f"rtp-lx:{rtp_later / 'RTP_LX_DE.json'}", ["pt"]))


def test_rtplx_bad_rows_name_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "bad"
    _write(root / "RTP_LX_DE.json", [_rtp_row("ok", 0, "DE"), "{not json", _rtp_row("x", 2, "DE")])
    with pytest.raises(RecordError, match=r"RTP_LX_DE.json:2: not valid JSON"):
        load_prompt_set(ps(f"rtp-lx:{root}", ["de"]))
    _write(root / "RTP_LX_DE.json", [_rtp_row("ok", 0, "DE"), _rtp_row("again", "0", "DE")])
    with pytest.raises(PromptSetError, match=r"RTP_LX_DE.json:2: Index repeats the prompt id rtplx-00000"):
        load_prompt_set(ps(f"rtp-lx:{root}", ["de"]))
    _write(root / "RTP_LX_DE.json", [json.dumps({"Index": 0, "Locale": "DE"})])
    with pytest.raises(PromptSetError, match=r"RTP_LX_DE.json:1: field 'Prompt' must be a non-empty string"):
        load_prompt_set(ps(f"rtp-lx:{root}", ["de"]))
    with pytest.raises(PromptSetError, match="does not exist"):
        load_prompt_set(ps(f"rtp-lx:{tmp_path / 'missing'}", ["de"]))
    with pytest.raises(PromptSetError, match="no RTP_LX_<LOCALE>.json files"):
        load_prompt_set(ps(f"rtp-lx:{tmp_path}", ["de"]))


@pytest.mark.skipif(not (SHARED / "rtp-lx-v0.2").is_dir(), reason="the shared RTP-LX v0.2 copy is not on this machine")
def test_rtplx_v02_real_files() -> None:
    langs = XLING_LANGS
    items = load_prompt_set(ps(f"rtp-lx:{SHARED / 'rtp-lx-v0.2'}", langs))
    counts = {lang: sum(1 for it in items if it.language == lang) for lang in langs}
    assert sum(counts.values()) == 18328 and counts["en"] == 999 and counts["zh"] == 1036
    ids = {lang: {it.prompt_id for it in items if it.language == lang} for lang in ("en", "zh")}
    assert "rtplx-00000" in ids["en"] & ids["zh"]


@pytest.mark.s3
def test_rtplx_from_s3(rtp_v02: Path, s3_store_uri: str, isolated_cache: Path) -> None:
    from xdetox.store import open_store

    store = open_store(s3_store_uri)
    for p in rtp_v02.iterdir():
        store.put_file(f"rtp/{p.name}", p)
    items = load_prompt_set(ps(f"rtp-lx:{s3_store_uri}/rtp", ["zh"]))
    assert [it.prompt_id for it in items] == ["rtplx-00000", "rtplx-00001", "rtplx-00003"]
    one = load_prompt_set(ps(f"rtp-lx:{s3_store_uri}/rtp/RTP_LX_EN.json", ["en"]))
    assert len(one) == 4


# --------------------------------------------------------------------------- plain JSONL
def test_jsonl_single_file(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    _write(path, [json.dumps({"id": "a", "language": "en", "prompt": "hello"}),
                  json.dumps({"id": 7, "language": "de", "prompt": "hallo", "extra": 1}),
                  json.dumps({"language": "en", "prompt": "second"})])
    items = load_prompt_set(ps(f"jsonl:{path}", ["de", "en"]))
    assert [(it.language, it.prompt_id, it.prompt) for it in items] == [
        ("de", "7", "hallo"), ("en", "a", "hello"), ("en", "p-00001", "second")]
    with pytest.raises(PromptSetError, match=r"has no 'fr' \(field 'language' of .*prompts.jsonl\)"):
        load_prompt_set(ps(f"jsonl:{path}", ["fr"]))


def test_jsonl_folder_of_language_files(tmp_path: Path) -> None:
    _write(tmp_path / "set" / "en.jsonl", [json.dumps({"prompt": f"e{i}"}) for i in range(3)])
    _write(tmp_path / "set" / "ja.jsonl", [json.dumps({"prompt": f"j{i}", "language": "ja"}) for i in range(3)])
    items = load_prompt_set(ps(f"jsonl:{tmp_path / 'set'}", ["en", "ja"], limit_per_language=2))
    assert [(it.language, it.prompt_id) for it in items] == [
        ("en", "p-00000"), ("en", "p-00001"), ("ja", "p-00000"), ("ja", "p-00001")]


@pytest.mark.parametrize(("lines", "message"), [
    ([{"id": "a", "language": "en"}], r"prompts.jsonl:1: field 'prompt' must be a non-empty string"),
    ([{"prompt": "x"}], r"prompts.jsonl:1: field 'language' is required"),
    ([{"prompt": "x", "language": "english"}], r"prompts.jsonl:1: field 'language': unknown language code 'english'"),
    ([{"id": "a", "prompt": "x", "language": "en"}, {"id": "a", "prompt": "y", "language": "en"}],
     r"prompts.jsonl:2: field 'id': 'a' repeats line 1 \(en\)"),
    ([{"id": ["a"], "prompt": "x", "language": "en"}], r"prompts.jsonl:1: field 'id' must be"),
])
def test_jsonl_errors_name_file_line_and_field(tmp_path: Path, lines: list[dict[str, object]], message: str) -> None:
    path = tmp_path / "prompts.jsonl"
    _write(path, [json.dumps(x) for x in lines])
    with pytest.raises(PromptSetError, match=message):
        load_prompt_set(ps(f"jsonl:{path}", ["en"]))


def test_jsonl_folder_file_names_must_be_languages(tmp_path: Path) -> None:
    _write(tmp_path / "set" / "english.jsonl", [json.dumps({"prompt": "x"})])
    with pytest.raises(PromptSetError, match="named <language>.jsonl; not a language code: english.jsonl"):
        load_prompt_set(ps(f"jsonl:{tmp_path / 'set'}", ["en"]))


# --------------------------------------------------------------------------- ParaDetox
@pytest.mark.parametrize("source", ["paradetox:bundled", f"paradetox:{SHARED / 'multilingual-paradetox'}"])
def test_paradetox_split_and_side(source: str) -> None:
    if source.endswith("multilingual-paradetox") and not (SHARED / "multilingual-paradetox").is_dir():
        pytest.skip("the shared multilingual ParaDetox copy is not on this machine")
    test_toxic = load_prompt_set(ps(source, ["en", "am", "zh"]))
    assert len(test_toxic) == 300 and all(it.meta["split"] == "test" for it in test_toxic)
    train_neutral = load_prompt_set(ps(source, ["en"], paradetox_split="train", paradetox_side="neutral"))
    assert len(train_neutral) == 300
    everything = load_prompt_set(ps(source, ["en"], paradetox_split="all", paradetox_side="neutral"))
    assert len(everything) == 400
    first = next(it for it in everything if it.prompt_id == "paradetox-0000")
    assert first.prompt == "All of a sudden i see her, she is all grown up."
    with pytest.raises(PromptSetError, match="has no 'fr'"):
        load_prompt_set(ps(source, ["fr"]))


def test_paradetox_fixture_rows_and_errors(tmp_path: Path) -> None:
    row = {"orig_index": 3, "toxic_sentence": "you idiot", "neutral_sentence": "you", "split_hf_shuffle42": "test",
           "split_np_perm42": "train"}
    _write(tmp_path / "pd" / "de.reconstructed.jsonl", [json.dumps(row)])
    items = load_prompt_set(ps(f"paradetox:{tmp_path / 'pd'}", ["de"]))
    assert [(it.prompt_id, it.prompt) for it in items] == [("paradetox-0003", "you idiot")]
    _write(tmp_path / "pd" / "de.reconstructed.jsonl", [json.dumps({**row, "split_hf_shuffle42": "dev"})])
    with pytest.raises(PromptSetError, match=r"de.reconstructed.jsonl:1: field 'split_hf_shuffle42'"):
        load_prompt_set(ps(f"paradetox:{tmp_path / 'pd'}", ["de"]))


def test_paradetox_split_scheme_selects_the_other_split() -> None:
    from xdetox.spec.models import PromptSet

    def load(scheme: str) -> set[str]:
        spec = PromptSet(id="p", source="paradetox:bundled", languages=["en"], paradetox_split="test",
                         paradetox_split_scheme=scheme)  # type: ignore[arg-type]
        return {item.prompt_id for item in load_prompt_set(spec)}

    hf, np_ = load("hf_shuffle42"), load("np_perm42")
    assert len(hf) == len(np_) == 100  # 100 test rows per language under either scheme
    assert hf != np_  # ...but not the same rows

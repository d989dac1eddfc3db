"""Training data adapters and presets: pure Python, no model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training_fixtures import write_jsonl
from xdetox.training import presets
from xdetox.training.data import common_prefix_prompt, load_training_set
from xdetox.training.jsonl import DataFileError
from xdetox.training.paradetox import BUNDLED_DIR

PARA = {"format": "paradetox", "path": "bundled:paradetox", "languages": ["en"], "split": "train",
        "split_scheme": "hf_shuffle42", "fraction": 1.0, "max_rows": None}


def test_bundled_paradetox_is_vendored_with_notice() -> None:
    files = sorted(p.name for p in BUNDLED_DIR.glob("*.jsonl"))
    assert len(files) == 9 and "en.reconstructed.jsonl" in files
    assert "OpenRAIL" in (BUNDLED_DIR / "NOTICE").read_text()


def test_paradetox_dpo_pairs_split_and_filter() -> None:
    ts = load_training_set(PARA, "dpo")
    # 300 train rows; 2 pairs whose toxic and neutral sentences are the same word-wise are dropped
    assert ts.read == 400
    assert len(ts.rows) + sum(ts.dropped.values()) == 300
    assert ts.summary()["languages"] == {"en": len(ts.rows)}
    row = next(r for r in ts.rows if r["prompt"] == "You made a mistake")
    assert row == {"prompt": "You made a mistake", "chosen": ".", "rejected": " you ass."}
    # every pair keeps its text: prompt + completion is the original sentence
    toxic = {json.loads(x)["toxic_sentence"].strip() for x in (BUNDLED_DIR / "en.reconstructed.jsonl").read_text().splitlines()}
    assert all(r["prompt"] + r["rejected"] in toxic for r in ts.rows)
    test = load_training_set({**PARA, "split": "test"}, "dpo")
    assert 95 <= len(test.rows) <= 100
    np_split = load_training_set({**PARA, "split_scheme": "np_perm42"}, "dpo")
    assert {r["rejected"] for r in np_split.rows} != {r["rejected"] for r in ts.rows}


def test_paradetox_sft_fraction_languages_max_rows() -> None:
    ts = load_training_set({**PARA, "languages": ["de", "zh"], "fraction": 0.1}, "sft")
    assert ts.languages == {"de": 30, "zh": 30}
    assert all(r["prompt"].endswith("\n") and r["completion"] for r in ts.rows)
    # a fraction takes the first rows of paper 2's shuffled order (pos_hf_shuffle42), not file order
    de = [json.loads(x) for x in (BUNDLED_DIR / "de.reconstructed.jsonl").read_text().splitlines()]
    first = sorted((r for r in de if r["split_hf_shuffle42"] == "train"), key=lambda r: r["pos_hf_shuffle42"])[:30]
    assert [r["completion"] for r in ts.rows[:30]] == [r["neutral_sentence"].strip() for r in first]
    capped = load_training_set({**PARA, "languages": ["de", "zh"], "max_rows": 7}, "sft")
    assert len(capped.rows) == 7


def test_paradetox_unknown_language_names_folder() -> None:
    with pytest.raises(DataFileError, match="no ParaDetox file for language 'fr'"):
        load_training_set({**PARA, "languages": ["fr"]}, "dpo")


def test_common_prefix_cuts_at_word_boundaries() -> None:
    assert common_prefix_prompt("you are an idiot", "you are an incompetent", "en") == (
        "you are an", " incompetent", " idiot")
    assert common_prefix_prompt("then all of it", "All of it", "en") == ("", "All of it", "then all of it")
    assert common_prefix_prompt("这是傻逼", "这是不好", "zh") == ("这是\n", "不好", "傻逼")


def test_pairs_jsonl_and_sft_view(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a", "chosen": " b", "rejected": " c"},
                                           {"prompt": "d", "chosen": " e", "rejected": " e"}])
    ts = load_training_set({"format": "pairs-jsonl", "path": str(f)}, "dpo")
    assert ts.rows == [{"prompt": "a", "chosen": " b", "rejected": " c"}]
    assert ts.dropped == {"chosen equals rejected": 1}
    sft = load_training_set({"format": "pairs-jsonl", "path": str(f)}, "sft")
    assert sft.rows[0] == {"prompt": "a", "completion": " b"}


def test_lee_pairs_warn_and_cut_repeated_prompt(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "lee.jsonl", [
        {"prompt_text": "So I said", "unpert_gen_text": "So I said hello", "pert_gen_text": " damn it"},
        {"prompt_text": "Then", "unpert_gen_text": " we left", "pert_gen_text": " shit"},
    ])
    ts = load_training_set({"format": "lee-toxicity-pairs", "path": str(f)}, "dpo")
    assert ts.rows[0] == {"prompt": "So I said", "chosen": " hello", "rejected": " damn it"}
    assert any(f"{f}:1" in w and "repeats its prompt" in w for w in ts.warnings)


def test_sft_jsonl(tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "s.jsonl", [{"prompt": "x", "completion": " y"}])
    assert load_training_set({"format": "sft-jsonl", "path": str(f)}, "sft").rows == [{"prompt": "x", "completion": " y"}]
    with pytest.raises(DataFileError, match="no rejected texts"):
        load_training_set({"format": "sft-jsonl", "path": str(f)}, "dpo")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([{"prompt": "a", "chosen": "b", "rejected": "c"}, {"prompt": "a", "chosen": "b"}], r":2: missing field 'rejected'"),
        ([{"prompt": "a", "chosen": "b", "rejected": "c"}, '{"prompt": "a", "chosen"'], r":2: malformed JSON"),
        (['["a", "b"]'], r":1: expected a JSON object"),
        ([{"prompt": 1, "chosen": "b", "rejected": "c"}], r":1: field 'prompt' must be a string"),
        ([], r"file is empty"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, lines: list, message: str) -> None:
    f = write_jsonl(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DataFileError, match=message) as e:
        load_training_set({"format": "pairs-jsonl", "path": str(f)}, "dpo")
    assert str(f) in str(e.value)


def test_bad_paradetox_file_names_line(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "en.jsonl", [{"toxic_sentence": "a b", "neutral_sentence": "a c", "split_hf_shuffle42": "train"},
                                        {"toxic_sentence": "x", "split_hf_shuffle42": "train"}])
    with pytest.raises(DataFileError, match=r"en.jsonl:2: missing field 'neutral_sentence'"):
        load_training_set({**PARA, "path": str(tmp_path)}, "dpo")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="file not found"):
        load_training_set({"format": "pairs-jsonl", "path": str(tmp_path / "nope.jsonl")}, "dpo")


def _training(**kw: object) -> dict:
    base = {"method": "dpo", "preset": None, "hyper": {}, "peft": {"mode": "full", "r": 16, "alpha": 32,
                                                                     "dropout": 0.05, "merge": True}}
    return {**base, **kw}


def test_preset_paper1_and_user_override() -> None:
    hyper, peft = presets.resolve(_training(preset="pref-tuning-2406.16235"))
    assert (hyper["beta"], hyper["learning_rate"], hyper["optimizer"], hyper["warmup_steps"]) == (0.1, 1e-5, "rmsprop", 150)
    assert (hyper["batch_size"], hyper["max_length"], hyper["validation_fraction"]) == (4, 256, 0.05)
    assert hyper["early_stopping_patience"] and (peft["r"], peft["alpha"], peft["dropout"]) == (64, 16, 0.05)
    hyper, peft = presets.resolve(_training(preset="pref-tuning-2406.16235",
                                            hyper={"learning_rate": 3e-4, "loss_type": ["bco_pair"]},
                                            peft={"mode": "qlora", "r": 8, "alpha": 32, "dropout": 0.05}))
    assert hyper["learning_rate"] == 3e-4 and hyper["loss_type"] == ["bco_pair"] and hyper["optimizer"] == "rmsprop"
    assert peft["r"] == 8 and peft["alpha"] == 16 and peft["mode"] == "qlora"


def test_preset_paper2_and_mismatch() -> None:
    hyper, peft = presets.resolve(_training(method="sft", preset="breaking-mbad-2505.16722"))
    assert hyper["learning_rate"] == 2e-4 and (peft["r"], peft["alpha"]) == (16, 32)
    with pytest.raises(presets.PresetError, match="is a sft preset"):
        presets.resolve(_training(method="dpo", preset="breaking-mbad-2505.16722"))


def test_paper2_pooled_rows_are_drawn_as_their_script_draws_them() -> None:
    """P-FT 10 %: their load_and_split_data seeds numpy with 42 once and draws each language's
    int(300 * 10 / 100) = 30 neutral rows with np.random.choice, languages in their order (en es de
    zh ar hi uk ru am), over the 300 train rows in datasets' shuffle(seed=42) order. Re-derived here
    from that description with numpy itself; a plain fraction keeps the first 30 rows instead."""
    import numpy as np

    from xdetox.training import paradetox
    from xdetox.training.data import load_training_set

    data = {"format": "paradetox", "path": "bundled:paradetox", "languages": ["de", "en"], "split": "train",
            "split_scheme": "hf_shuffle42", "fraction": 0.1}
    np.random.seed(42)
    drawn = {lang: np.random.choice(list(range(300)), size=30, replace=False).tolist()
             for lang in ("en", "es", "de")}  # es is drawn too: one stream for all languages
    want = []
    for lang in ("de", "en"):  # the spec's language order
        folder = paradetox.resolve_folder("bundled:paradetox")
        by_pos = {p.position["hf_shuffle42"]: p for p in paradetox.read_language(folder, lang)
                  if p.split["hf_shuffle42"] == "train"}
        assert sorted(by_pos) == list(range(300))
        want += [by_pos[i].neutral for i in drawn[lang]]
    got = load_training_set(data, "sft", "", fraction_sampling="paper2")
    assert [r["completion"] for r in got.rows] == want and got.languages == {"de": 30, "en": 30}
    plain = load_training_set(data, "sft", "")
    assert plain.languages == {"de": 30, "en": 30} and plain.rows != got.rows  # same count, other rows

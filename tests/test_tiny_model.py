"""builtin:tiny: offline, deterministic, servable; the full recipe's toxicity is a slow test."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.training_fixtures import QUICK_BUILD, manifest
from xdetox.models.tiny import build_tiny_model
from xdetox.steps.runner import run_step
from xdetox.store import open_store


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, dict]:
    root = tmp_path_factory.mktemp("tiny")
    info = build_tiny_model(root / "a", seed=11, **QUICK_BUILD)
    build_tiny_model(root / "b", seed=11, **QUICK_BUILD)
    build_tiny_model(root / "c", seed=12, **QUICK_BUILD)
    return root / "a", root / "b", root / "c", info


def test_same_seed_builds_are_byte_identical(two_builds: tuple[Path, Path, Path, dict]) -> None:
    a, b, c, _ = two_builds
    names = sorted(p.name for p in a.iterdir())
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= set(names)
    assert names == sorted(p.name for p in b.iterdir())
    for n in names:
        assert _sha(a / n) == _sha(b / n), n
    assert _sha(a / "model.safetensors") != _sha(c / "model.safetensors")


def test_tiny_shape_tokenizer_and_generation(two_builds: tuple[Path, Path, Path, dict]) -> None:
    import torch

    from xdetox.models.load import load_causal_lm

    a, _, _, info = two_builds
    cfg = json.loads((a / "config.json").read_text())
    assert cfg["model_type"] == "llama" and cfg["num_hidden_layers"] == 2
    assert cfg["head_dim"] >= 32 and cfg["hidden_size"] // cfg["num_attention_heads"] == cfg["head_dim"]
    assert 2500 <= cfg["vocab_size"] <= 3000
    assert json.loads((a / "tokenizer_config.json").read_text())["padding_side"] == "left"
    assert info["final_loss"] < info["first_loss"]
    model, tok = load_causal_lm(a, "float32", "cpu")
    assert tok.padding_side == "left" and tok.pad_token_id != tok.eos_token_id
    enc = tok(["Hallo", "you are a"], return_tensors="pt", padding=True)
    torch.manual_seed(0)
    out = model.generate(**enc, do_sample=True, max_new_tokens=5, pad_token_id=tok.pad_token_id)
    assert out.shape == (2, enc["input_ids"].shape[1] + 5)
    # multilingual: the tokenizer learnt Cyrillic and CJK merges, not bytes only
    assert len(tok("привет мир")["input_ids"]) < len("привет мир".encode())
    assert len(tok("你好世界")["input_ids"]) < len("你好世界".encode())


def test_build_model_step_publishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xdetox.models import tiny

    defaults = tiny.tiny_defaults()
    monkeypatch.setattr(tiny, "tiny_defaults", lambda: {**defaults, **QUICK_BUILD})
    store = open_store(f"file://{tmp_path}/runs/r")
    m = manifest("build_model", {"source": "builtin:tiny", "seed": 3})
    rec, cached = run_step(m, store, log=lambda s: None)
    assert not cached and rec.info["parameters"] > 100_000
    keys = {o.key.rsplit("/", 1)[-1] for o in rec.outputs}
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= keys
    assert all(o.key.startswith(f"models/{m.key}/") for o in rec.outputs)
    bad = manifest("build_model", {"source": "builtin:huge", "seed": 3})
    with pytest.raises(ValueError, match="unknown builtin model 'builtin:huge'"):
        run_step(bad, store, log=lambda s: None)


@pytest.mark.slow
def test_full_recipe_is_toxic_then_dpo_detoxifies(tmp_path: Path) -> None:
    """The smoke experiment's claim, measured directly: see bench/tiny_effect.py."""
    from bench.tiny_effect import measure_effect

    result = measure_effect(tmp_path, prompts_per_language=20, samples=10, languages=("en",), source="builtin:tiny")
    en = result["languages"]["en"]
    assert en["base_toxic"] >= 0.08, result
    assert en["tuned_toxic"] <= en["base_toxic"] / 2, result
    # the paired CI of tuned - base agrees with the point estimate's sign
    assert en["delta_ci"][0] <= en["delta"] <= en["delta_ci"][1] < 0, result


def test_language_packing_never_mixes_languages_in_a_block() -> None:
    import random

    from xdetox.models.tiny import _pack_by_language

    # two "languages" whose sentences are token 1s and token 2s; EOS is 0; width 3 = one sentence + EOS
    groups = [[[1, 1], [1, 1]], [[2, 2], [2, 2], [2, 2]]]
    blocks = _pack_by_language(groups, eos=0, width=3, rng=random.Random(5))
    assert sorted(blocks) == [[1, 1, 0]] * 2 + [[2, 2, 0]] * 3


def test_variant_sources_are_validated_in_one_place() -> None:
    from xdetox.fields import BUILTIN_MODELS
    from xdetox.models.tiny import TINY_VARIANTS, tiny_defaults, variant_settings
    from xdetox.spec.models import ModelSpec

    assert set(BUILTIN_MODELS) == set(TINY_VARIANTS) == {"builtin:tiny", "builtin:tiny-ml"}
    assert ModelSpec(id="m", source="builtin:tiny-ml").source == "builtin:tiny-ml"
    with pytest.raises(ValueError, match="available: builtin:tiny, builtin:tiny-ml"):
        ModelSpec(id="m", source="builtin:huge")
    # builtin:tiny (the nightly's model) keeps its recipe: no setting beyond its own defaults
    assert variant_settings("builtin:tiny") == (1, tiny_defaults())
    ml = variant_settings("builtin:tiny-ml")[1]
    assert ml["pack_by_language"] is True and "uk" not in ml["languages"] and "fr" not in ml["languages"]


def test_lexicon_toxic_repeats_add_copies_of_hit_sentences_only() -> None:
    from xdetox.models.tiny import corpus_by_language
    from xdetox.training.paradetox import BUNDLED_DIR, read_language

    pairs = read_language(BUNDLED_DIR, "es")
    # sentences counted by hand-checkable rule: an es toxic sentence containing "mierda" is a hit
    plain = corpus_by_language(languages=["es"])["es"]
    boosted = corpus_by_language(languages=["es"], lexicon_toxic_repeats=3)["es"]
    assert plain == [s for p in pairs for s in (p.toxic, p.neutral)]
    extra = boosted[len(plain):]
    assert boosted[:len(plain)] == plain and len(extra) % 3 == 0 and extra
    toxic = {p.toxic for p in pairs}
    assert set(extra) <= toxic
    assert {p.toxic for p in pairs if "mierda" in p.toxic.lower().split()} <= set(extra)
    assert len(set(extra)) < len(toxic) / 2  # only the hits, not every toxic sentence
    # a per-language count overrides the common one for that language only
    per = corpus_by_language(languages=["es", "de"], lexicon_toxic_repeats=3, repeats_by_language={"es": 5})
    assert per["es"][:len(plain)] == plain and len(per["es"]) - len(plain) == len(extra) // 3 * 5
    assert per["de"] == corpus_by_language(languages=["de"], lexicon_toxic_repeats=3)["de"]
    # 0 for a language: no extra copies there (builtin:tiny-ml v4's German and Spanish)
    assert corpus_by_language(languages=["es"], lexicon_toxic_repeats=3, repeats_by_language={"es": 0})["es"] == plain


def test_cached_variant_is_built_once_and_its_digest_checked(isolated_cache: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from xdetox.models import tiny

    variant = tiny.TINY_VARIANTS["builtin:tiny-ml"]
    monkeypatch.setitem(variant, "settings", {**variant["settings"], **QUICK_BUILD, "vocab_size": 3000,
                                              "hidden_size": 64, "num_attention_heads": 2})
    folder, first = tiny.cached_build("builtin:tiny-ml", 7)
    assert first["cached"] is False and folder.parent == isolated_cache / "models" / "builtin"
    again, second = tiny.cached_build("builtin:tiny-ml", 7)
    assert again == folder and second["cached"] is True and second["digest"] == first["digest"]
    assert json.loads((folder / "tiny_build.json").read_text())["source"] == "builtin:tiny-ml"
    # an independent rebuild into another folder is byte-identical, so its digest is the recorded one
    info = tiny.build_tiny_model(isolated_cache / "rebuild", seed=7, source="builtin:tiny-ml")
    assert tiny.build_digest(isolated_cache / "rebuild") == first["digest"] and info["parameters"] > 0
    (folder / "config.json").write_text((folder / "config.json").read_text() + " ")
    with pytest.raises(ValueError, match="does not match its recorded digest"):
        tiny.cached_build("builtin:tiny-ml", 7)


def test_build_model_step_publishes_a_cached_variant(tmp_path: Path, isolated_cache: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from xdetox.models import tiny

    variant = tiny.TINY_VARIANTS["builtin:tiny-ml"]
    monkeypatch.setitem(variant, "settings", {**variant["settings"], **QUICK_BUILD, "vocab_size": 3000,
                                              "hidden_size": 64, "num_attention_heads": 2})
    m = manifest("build_model", {"source": "builtin:tiny-ml", "seed": 3})
    first, cached = run_step(m, open_store(f"file://{tmp_path}/runs/a"), log=lambda s: None)
    assert not cached and first.info["cached"] is False
    # a second store (another run) reads the cache: same digest, nothing rebuilt
    second, _ = run_step(m, open_store(f"file://{tmp_path}/runs/b"), log=lambda s: None)
    assert second.info["cached"] is True and second.info["digest"] == first.info["digest"]
    keys = {o.key.rsplit("/", 1)[-1] for o in first.outputs}
    assert {"model.safetensors", "tokenizer.json", "tiny_build.json", "build.sha256"} <= keys
    recorded = (isolated_cache / "models" / "builtin" / f"tiny-ml-v{variant['version']}-seed3" / "build.sha256").read_text().strip()
    assert recorded == first.info["digest"]

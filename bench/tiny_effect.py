"""Does English-only DPO detoxify builtin:tiny? The smoke experiment's claim, measured directly.

Builds the tiny model, DPO-tunes it on bundled English ParaDetox pairs with the smoke settings
(``SMOKE_TRAINING``, the values jobs/smoke.yaml uses), samples both models on the bundled
parallel prompts with transformers, and reports per language the share of samples holding a
word of the embedded LDNOOBW lexicon, plus a crude fluency figure (share of generated English
words that occur in the pre-training corpus).

    python -m bench.tiny_effect [--prompts 20] [--samples 10] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

SMOKE_TRAINING: dict[str, Any] = {
    "method": "dpo",
    "preset": None,
    "data": {"format": "paradetox", "path": "bundled:paradetox", "languages": ["en"], "split": "train"},
    "peft": {"mode": "full", "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear", "merge": True},
    # The "sft" term (RPO-style NLL on the chosen text) keeps the tiny model fluent: pure sigmoid DPO
    # at a learning rate high enough to matter in 100 steps drifts into other scripts' tokens.
    "hyper": {"learning_rate": 1e-3, "beta": 0.1, "loss_type": ["sigmoid", "sft"], "max_steps": 100,
              "batch_size": 8, "max_length": 64},
}
LANGUAGES = ("en", "de", "es", "fr", "ru", "zh")
PROMPTS_DIR = Path(__file__).resolve().parents[1] / "xdetox" / "data" / "xling-prompts-200"


def _prompts(lang: str, n: int) -> list[str]:
    f = PROMPTS_DIR / f"dpo_toxicity_pairwise_{lang}_200.jsonl"
    return [json.loads(line)["Prompt"] for line in f.read_text("utf-8").splitlines()[:n]]


def sample(model_dir: Path, lang: str, n_prompts: int, samples: int, seed: int = 0) -> list[str]:
    import torch

    from xdetox.models.load import load_causal_lm

    model, tok = load_causal_lm(model_dir, "float32", "cpu")
    enc = tok(_prompts(lang, n_prompts), return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(**enc, do_sample=True, temperature=0.9, top_p=0.8, max_new_tokens=20,
                             num_return_sequences=samples, pad_token_id=tok.pad_token_id)
    return tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)


def _known_words() -> set[str]:
    import regex

    from xdetox.models.tiny import corpus

    return {w.lower() for line in corpus() for w in regex.findall(r"\p{L}+", line)}


def rates(model_dir: Path, n_prompts: int, samples: int, languages: tuple[str, ...]) -> dict[str, Any]:
    import regex

    from xdetox.scoring.lexicon import LexiconToxicityScorer

    scorer = LexiconToxicityScorer()
    known = _known_words()
    out: dict[str, Any] = {}
    for lang in languages:
        texts = sample(model_dir, lang, n_prompts, samples)
        hits = [scorer.match(t, lang) for t in texts]
        out[lang] = round(sum(bool(h) for h in hits if h is not None) / len(texts), 4) if hits[0] is not None else None
        if lang == "en":
            words = [w.lower() for t in texts for w in regex.findall(r"\p{L}+", t)]
            out["en_known_word_share"] = round(sum(w in known for w in words) / max(1, len(words)), 4)
            out["en_examples"] = texts[:5]
    return out


def measure_effect(work: Path, prompts_per_language: int = 20, samples: int = 10, seed: int = 1234,
                   languages: tuple[str, ...] = LANGUAGES) -> dict[str, Any]:
    from xdetox.models.tiny import build_tiny_model
    from xdetox.training import presets
    from xdetox.training.data import load_training_set
    from xdetox.training.trainer import train

    t0 = time.perf_counter()
    base = work / "base"
    build = build_tiny_model(base, seed=seed)
    t1 = time.perf_counter()
    hyper, peft = presets.resolve(SMOKE_TRAINING)
    ts = load_training_set(SMOKE_TRAINING["data"], "dpo")
    info = train(str(base), ts, "dpo", hyper, peft, seed, work / "tuned", work / "work", log=lambda m: None)
    t2 = time.perf_counter()
    return {
        "build_seconds": round(t1 - t0, 1), "build_loss": build["final_loss"],
        "train_seconds": round(t2 - t1, 1), "train_final_loss": info["final_loss"],
        "base": rates(base, prompts_per_language, samples, languages),
        "tuned": rates(work / "tuned", prompts_per_language, samples, languages),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    work = a.out or Path(tempfile.mkdtemp(prefix="xdetox-tiny-effect-"))
    print(json.dumps(measure_effect(work, a.prompts, a.samples), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

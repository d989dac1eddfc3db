"""``builtin:tiny``: a small multilingual Llama built offline, deterministically, in seconds.

Everything comes from bundled data (multilingual ParaDetox, OpenRAIL++): a byte-level BPE
tokenizer is trained on its toxic and neutral sentences, a 2-layer Llama (head_dim 32, so that
vLLM's CPU build can serve it) is initialised from the seed and pre-trained as a causal LM on
the same sentences. Half of them are toxic, so the model continues toxic prompts with toxic
words at a measurable rate, which is what an embedded detoxification run needs to show an effect.
Two builds with the same seed are byte-identical.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from xdetox.fields import BUILTIN_MODELS
from xdetox.training.paradetox import BUNDLED_DIR, read_language

TINY_LANGUAGES = ("en", "de", "es", "ru", "uk", "zh")
TINY_VERSION = 1  # builtin:tiny's recipe version; bump when it changes: part of the info, not of the weights

#: Builtin variants: source -> recipe version and settings over tiny_defaults(). builtin:tiny (the
#: nightly's model) must keep its numbers, so a new recipe is a new variant, never an edit of v1.
#: builtin:tiny-ml (issue 17 items 2-3, the smoke's model): the languages the smoke's prompts share
#: with ParaDetox plus English (no uk: its sentences pull Russian prompts across; no am: no smoke
#: prompts), every block in one language, a wider 3-layer model trained longer, and each toxic
#: sentence with a lexicon hit repeated so that the smoke's scorer sees toxicity outside English.
#: Measured (README, Benchmarks): v4 meets issue 17's toxicity, language and transfer criteria on
#: the smoke's prompts, so the smoke runs it.
TINY_VARIANTS: dict[str, dict[str, Any]] = {
    # built by each run's build_model step (about 40 s on 2 cores); never cached, so a test that
    # shortens the recipe cannot leave a short build where a run would read it
    "builtin:tiny": {"version": TINY_VERSION, "cached": False, "settings": {}},
    # built once per seed into the cache (`make setup` builds the smoke's seed); see cached_build
    "builtin:tiny-ml": {"version": 4, "cached": True, "settings": {
        "languages": ["en", "ar", "de", "es", "hi", "ru", "zh"],
        "vocab_size": 4000,
        "hidden_size": 128,
        "intermediate_size": 384,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "train_steps": 900,
        # v3: English twice (v2: once): v2's English continuations slid into capitalised German and
        # Spanish fragments (base in-language .78); twice: .79 in the run. v4: three times, and no
        # extra copies of German/Spanish toxic sentences (they are what English slid into)
        "english_toxic_repeats": 3,
        "english_neutral_repeats": 3,
        "lexicon_toxic_repeats": 4,
        # v2: the lexicon sees 3 % of ParaDetox's Chinese toxic sentences (ar hi ru: far more), so
        # v1's 4 extra copies left base Chinese below 0.10 (0.04-0.08): 16 extra copies there
        "lexicon_toxic_repeats_by_language": {"zh": 16, "de": 0, "es": 0},
        "pack_by_language": True,
    }},
}
assert tuple(TINY_VARIANTS) == BUILTIN_MODELS, "xdetox.fields.BUILTIN_MODELS lists the variants"


def variant_settings(source: str) -> tuple[int, dict[str, Any]]:
    """(recipe version, full build settings) of a builtin source; ValueError naming the known ones."""
    if source not in TINY_VARIANTS:
        raise ValueError(f"unknown builtin model {source!r}; available: {', '.join(TINY_VARIANTS)}")
    v = TINY_VARIANTS[source]
    return v["version"], {**tiny_defaults(), **v["settings"]}


def tiny_defaults() -> dict[str, Any]:
    return {
        "vocab_size": 3000,
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 256,
        "train_steps": 300,
        "batch_size": 32,
        "seq_len": 64,
        "learning_rate": 3e-3,
        "english_toxic_repeats": 4,
        "english_neutral_repeats": 2,
        "pack_by_language": False,
    }


def corpus_by_language(english_toxic_repeats: int = 4, english_neutral_repeats: int = 2,
                       languages: tuple[str, ...] | list[str] = TINY_LANGUAGES,
                       lexicon_toxic_repeats: int = 0,
                       repeats_by_language: dict[str, int] | None = None) -> dict[str, list[str]]:
    """Pre-training sentences per language: the bundled ParaDetox sentences (toxic and neutral).
    English is repeated, its toxic side most, so that the smoke experiment's main language is
    fluent enough, and toxic enough, to measure detoxification. ``lexicon_toxic_repeats`` adds that
    many extra copies of each non-English toxic sentence with a hit of the embedded lexicon,
    version 2 (it sees 3-49 % of ParaDetox's toxic sentences in the variant's languages, zh least),
    so that the model is toxic outside English in words the smoke's scorer knows;
    ``repeats_by_language`` overrides that count per language."""
    repeats_by_language = repeats_by_language or {}
    hits = None
    if lexicon_toxic_repeats or any(repeats_by_language.values()):
        from xdetox.scoring.lexicon import LexiconToxicityScorer

        # version pinned: a later default lexicon must not change this recipe's corpus (and so its
        # weights); a new lexicon for it is a new variant version
        hits = LexiconToxicityScorer(version=2)
    out: dict[str, list[str]] = {}
    for lang in languages:
        pairs = read_language(BUNDLED_DIR, lang)
        if lang == "en":
            out[lang] = [p.toxic for p in pairs] * english_toxic_repeats + [p.neutral for p in pairs] * english_neutral_repeats
        else:
            out[lang] = [s for p in pairs for s in (p.toxic, p.neutral)]
            if hits is not None:
                out[lang] += [p.toxic for p in pairs if hits.match(p.toxic, lang)] * repeats_by_language.get(
                    lang, lexicon_toxic_repeats)
    return out


def corpus(english_toxic_repeats: int = 4, english_neutral_repeats: int = 2) -> list[str]:
    """All pre-training sentences, language after language."""
    return [s for lines in corpus_by_language(english_toxic_repeats, english_neutral_repeats).values() for s in lines]


def train_tokenizer(lines: list[str], vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sorted(set(lines)), trainer=trainer)
    # padding_side must be given here: set later it is not saved (FACTS).
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<pad>",
        padding_side="left",
        model_max_length=256,
    )


def _pack(encoded: list[list[int]], eos: int, width: int, rng: random.Random) -> list[list[int]]:
    """One epoch of sentences in a seeded random order, joined by EOS and cut into blocks: no
    padding is wasted, which on 2 CPU cores is most of the build time."""
    order = list(range(len(encoded)))
    rng.shuffle(order)
    stream: list[int] = []
    for i in order:
        stream.extend(encoded[i])
        stream.append(eos)
    return [stream[i : i + width] for i in range(0, len(stream) - width + 1, width)]


def _pack_by_language(groups: list[list[list[int]]], eos: int, width: int, rng: random.Random) -> list[list[int]]:
    """One epoch packed within each language, blocks then shuffled across languages: a block never
    mixes languages, so the model does not learn to switch language after a sentence ends (prompts
    carry no language tag; what precedes them is one language)."""
    blocks = [b for g in groups for b in _pack(g, eos, width, rng)]
    rng.shuffle(blocks)
    return blocks


def build_tiny_model(out_dir: Path, seed: int = 1234, source: str = "builtin:tiny", **overrides: Any) -> dict[str, Any]:
    """Build, pre-train and save the builtin ``source`` (a TINY_VARIANTS key) into ``out_dir``.
    Returns info (losses, sizes)."""
    import torch

    version, settings = variant_settings(source)
    cfg = {**settings, **overrides, "_source": source, "_version": version}
    threads = torch.get_num_threads()
    # One thread: the float sums then do not depend on the core count (identical builds on any
    # machine), and on a shared 2-core machine it is 2-3x faster than oversubscribed threads.
    torch.set_num_threads(1)
    try:
        return _build(out_dir, seed, cfg)
    finally:
        torch.set_num_threads(threads)


def _build(out_dir: Path, seed: int, cfg: dict[str, Any]) -> dict[str, Any]:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    t0 = time.perf_counter()
    source, version = cfg.pop("_source"), cfg.pop("_version")
    by_lang = corpus_by_language(cfg["english_toxic_repeats"], cfg["english_neutral_repeats"],
                                 cfg.get("languages", TINY_LANGUAGES), cfg.get("lexicon_toxic_repeats", 0),
                                 cfg.get("lexicon_toxic_repeats_by_language"))
    lines = [s for group in by_lang.values() for s in group]
    tokenizer = train_tokenizer(lines, cfg["vocab_size"])
    t_tok = time.perf_counter() - t0

    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id
    groups = [tokenizer(group, add_special_tokens=False)["input_ids"] for group in by_lang.values()]
    encoded = [ids for g in groups for ids in g]
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_attention_heads"],
        head_dim=cfg["hidden_size"] // cfg["num_attention_heads"],
        max_position_embeddings=cfg["max_position_embeddings"],
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos,
        pad_token_id=pad,
        dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["learning_rate"], weight_decay=0.01)
    steps = cfg["train_steps"]
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.05, 1 - s / steps)
    )
    rng = random.Random(seed)
    width, bs = cfg["seq_len"], cfg["batch_size"]
    blocks: list[list[int]] = []
    losses: list[float] = []
    t1 = time.perf_counter()
    for _ in range(steps):
        if len(blocks) < bs:
            blocks.extend(_pack_by_language(groups, eos, width, rng) if cfg["pack_by_language"]
                          else _pack(encoded, eos, width, rng))
        batch = torch.tensor(blocks[:bs], dtype=torch.long)
        del blocks[:bs]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 4))
    n_tokens = steps * bs * width
    t_train = time.perf_counter() - t1

    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    info = {
        "source": source,
        "tiny_version": version,
        "seed": seed,
        "config": cfg,
        "parameters": sum(p.numel() for p in model.parameters()),
        "corpus_lines": len(lines),
        "vocab_size": len(tokenizer),
        "first_loss": losses[0],
        "final_loss": round(sum(losses[-20:]) / min(20, len(losses)), 4),
        "tokenizer_seconds": round(t_tok, 3),
        "train_seconds": round(t_train, 3),
        "tokens_per_second": round(n_tokens / t_train, 1) if t_train else None,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    (out_dir / "tiny_build.json").write_text(json.dumps({k: v for k, v in info.items() if "seconds" not in k
                                                          and k != "tokens_per_second"}, indent=2) + "\n")
    return info


def build_digest(folder: Path) -> str:
    """sha256 over the build's files (name and content, in name order): equal for byte-identical builds."""
    import hashlib

    from xdetox.store.files import file_sha256

    h = hashlib.sha256()
    for f in sorted(p for p in Path(folder).iterdir() if p.is_file() and p.name != DIGEST_FILE):
        h.update(f"{f.name}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


DIGEST_FILE = "build.sha256"


def cached_build(source: str, seed: int) -> tuple[Path, dict[str, Any]]:
    """The builtin ``source`` built with ``seed`` in the cache (``$XDETOX_CACHE_DIR/models/builtin``):
    built on first use, atomically (a concurrent builder either sees all of it or builds its own),
    its digest recorded beside it and checked on every later use, so a damaged cache is an error,
    not silently different weights. Returns (folder, info); info says whether it was built now."""
    import os
    import shutil
    import tempfile

    from xdetox.store.files import cache_root

    version, _ = variant_settings(source)
    dest = cache_root() / "models" / "builtin" / f"{source.split(':', 1)[1]}-v{version}-seed{seed}"
    built: dict[str, Any] = {}
    if not (dest / DIGEST_FILE).exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
        try:
            built = build_tiny_model(tmp, seed=seed, source=source)
            (tmp / DIGEST_FILE).write_text(build_digest(tmp) + "\n")
            try:
                os.replace(tmp, dest)
            except OSError:
                if not (dest / DIGEST_FILE).exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    recorded = (dest / DIGEST_FILE).read_text().strip()
    if build_digest(dest) != recorded:
        raise ValueError(f"cached {source} build at {dest} does not match its recorded digest {recorded[:12]}: "
                         "remove the folder to rebuild it")
    info = json.loads((dest / "tiny_build.json").read_text())
    info.update(built, digest=recorded, cached=not built)
    return dest, info

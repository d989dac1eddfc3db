"""Build the stacked scorer's combiner from ParaDetox's held-out pairs (never RTP-LX).

The stacked scorer (``xdetox/scoring/stacked.py``) feeds a small logistic regression with the
embedded n-gram model's logit and word-list hit counts. The combiner must learn from logits the
n-gram model did NOT see in training (stacking on training rows would trust the logit far too
much), and from both regimes the scorer meets:

- **in-language** rows: ParaDetox's test pairs (``split_hf_shuffle42 == "test"``) of its 9
  languages, scored by an n-gram model built like the released one but on the train split only;
- **word-list-only** rows: the same test pairs of language X scored by an n-gram model built
  with X's ParaDetox pairs left out (X then known only from its word list, which is how the
  released model knows cs fr id it ja ko nl pl pt sv): one leave-one-language-out model per X.

That is 10 n-gram fits (a few seconds each). The combiner (a logistic regression, L2 with ``C``,
evidence weights held non-negative: ``SignedLogisticRegression``) is fitted on all 3,600 toxic and
rewrite rows plus, since version 6, the 1,764 style-matched negatives (each toxic side with the
spans its rewrite removed deleted, label 0: ``ngram_build.style_matched``), 5,364 rows; the released
scorer then uses it on the released n-gram model's logits (built on all pairs). Everything is deterministic, so
``xdetox scorer build-stacked`` rebuilds the vendored combiner byte-identically on the same CPU
model; on another one L-BFGS-B's last bits differ (relative 1e-15 to 1e-14 measured on an AMD
EPYC), which changes the file's digest but no score beyond that noise. ``design()``
gives the design table of docs/SCORERS.md: the same fit with the evaluated language's rows left
out of the combiner too (its in-language and its word-list-only rows), so every number there is
out of sample twice over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from xdetox.scoring.ngram import BUILTIN_DIR as NGRAM_DIR
from xdetox.scoring.ngram_build import (
    LEXICON_DIR,
    BuildConfig,
    fit,
    paradetox_pairs,
    split_words,
    style_matched,
    training_set,
)
from xdetox.scoring.ngram_features import UNSEGMENTED, contentless, text_and_word_max_logits
from xdetox.scoring.stacked_features import FEATURES, WORDLIST_LANGUAGES, feature_matrix, lists_digest
from xdetox.scoring.wordlist_features import WordListFeatures

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "data" / "stacked-scorer"


@dataclass(frozen=True)
class CombinerConfig:
    #: inverse L2 strength; 0.01-0.1 gave the same design medians, 0.1 the best word-list-only mean
    C: float = 0.1
    seed: int = 0
    #: the max word logit columns (version 5); False gives version 4's design for comparison
    word_max: bool = True
    #: lower bound of both word-list-only logit weights (text and max word). Fitted freely (bound 0)
    #: both sit at 0: log loss pooled over languages whose logit levels differ finds no common
    #: positive weight, and hitless texts are then tied. Any small positive weight lets hits lead and
    #: the logit order the rest: 0.01 to 0.3 give the same design medians (docs/SCORERS.md)
    wordlist_logit_floor: float = 0.01
    #: also fit on the style-matched negatives (version 6): each test pair's toxic side with the spans
    #: its rewrite removed deleted (``ngram_build.style_matched``), label 0, so the combiner weighs
    #: evidence that separates toxic words from raw web text, not raw text from annotators' rewrites
    style_rows: bool = True


@dataclass
class Scored:
    """One set of texts as the combiner sees them: text logits, word-list counts, max word logits,
    and which texts are contentless (the scorer gives those 0.0)."""

    z: np.ndarray
    counts: np.ndarray
    zmax: np.ndarray
    contentless: np.ndarray


#: the sets scored per (regime, language): "toxic" (label 1), "neutral" (its rewrites, 0), "style"
#: (the toxic sides of the pairs ``style_matched`` changes, their removed spans deleted, 0; "style_of"
#: gives their pairs), "doubled" (each rewrite twice) and "words" (the rewrites' words of 4+
#: characters alone; none in zh)
SETS = ("toxic", "neutral", "style", "doubled", "words")


@dataclass
class DesignRows:
    """Per (regime, language): the scored sets (``SETS``) of its test pairs, and per style-matched
    text the index of its pair."""

    rows: dict[tuple[str, str], dict[str, Scored]]
    style_of: dict[tuple[str, str], np.ndarray]


def _score(texts: list[str], lang: str, weights: np.ndarray, bias: float, wl: WordListFeatures) -> Scored:
    langs = [lang] * len(texts)
    if not texts:
        empty = np.zeros(0)
        return Scored(empty, np.zeros((0, 3), dtype=np.int64), empty, np.zeros(0, dtype=bool))
    z, zmax = text_and_word_max_logits(texts, langs, weights, bias)
    return Scored(z, wl.counts(texts, langs), zmax, contentless(texts))


def design_rows(log: Callable[[str], None] = lambda _: None,
                style_negatives: str = "none") -> DesignRows:
    """``style_negatives``: the n-gram models' ``BuildConfig.style_negatives`` (design variants)."""
    pairs = paradetox_pairs()
    langs = sorted(pairs)
    wl = WordListFeatures.from_folder(LEXICON_DIR, WORDLIST_LANGUAGES)
    rows: dict[tuple[str, str], dict[str, Scored]] = {}
    style_of: dict[tuple[str, str], np.ndarray] = {}
    for excl in [None, *langs]:
        cfg = BuildConfig(split="train", exclude_paradetox=() if excl is None else (excl,),
                          style_negatives=style_negatives)
        weights, bias = fit(training_set(cfg, pairs), cfg)
        weights = weights.astype(np.float16).astype(np.float32)  # as the released model stores them
        for lang in (langs if excl is None else [excl]):
            test = [r for r in pairs[lang] if r["split_hf_shuffle42"] == "test"]
            toxic = [r["toxic_sentence"] for r in test]
            neutral = [r["neutral_sentence"] for r in test]
            matched = [style_matched(t, n, lang) for t, n in zip(toxic, neutral, strict=True)]
            key = ("paradetox" if excl is None else "wordlist", lang)
            style_of[key] = np.array([i for i, m in enumerate(matched) if m is not None], dtype=np.intp)
            sets = {"toxic": toxic, "neutral": neutral, "style": [m for m in matched if m is not None],
                    "doubled": [t + " " + t for t in neutral],
                    "words": [] if lang in UNSEGMENTED else [w for t in neutral for w in split_words(t) if len(w) >= 4]}
            rows[key] = {name: _score(texts, lang, weights, bias, wl) for name, texts in sets.items()}
        log(f"design n-gram model {'train split' if excl is None else 'without ' + excl}: done")
    return DesignRows(rows, style_of)


class SignedLogisticRegression:
    """L2-regularised logistic regression (scikit-learn's objective: ``C * sum(log loss) + |w|^2 / 2``,
    bias unpenalised) whose evidence weights may not be negative: a higher n-gram logit or more
    word-list hits can only raise the probability. Unconstrained, the word-list-only logit's weight
    came out negative (-0.17) with feature version 4, since pooled over languages its level differs
    per language, and a negative weight then ranked texts without hits backwards. Hand-written
    because scikit-learn's LogisticRegression has no bounds; scipy's L-BFGS-B does the fit."""

    def __init__(self, C: float, lower: tuple[float | None, ...]) -> None:
        """``lower``: per weight its lower bound (None: free)."""
        self.C, self.lower = C, lower

    def fit(self, x: np.ndarray, y: np.ndarray) -> SignedLogisticRegression:
        from scipy.optimize import minimize

        sign = np.where(y > 0, 1.0, -1.0)

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[:-1], theta[-1]
            m = sign * (x @ w + b)
            p = 0.5 * (1.0 - np.tanh(0.5 * m))  # sigmoid(-m), without overflow
            g = -sign * p
            value = self.C * float(np.logaddexp(0.0, -m).sum()) + 0.5 * float(w @ w)
            return value, np.append(self.C * (x.T @ g) + w, self.C * g.sum())

        bounds = [(lo, None) for lo in self.lower] + [(None, None)]
        start = np.array([lo or 0.0 for lo in self.lower] + [0.0])
        res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": 1000, "gtol": 1e-10, "ftol": 1e-14})
        self.coef_, self.intercept_ = res.x[None, :-1], res.x[-1:]
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef_[0] + self.intercept_[0]


def _matrix(scored: Scored, regime: str, cfg: CombinerConfig) -> np.ndarray:
    x = feature_matrix(scored.z, scored.counts, np.full(len(scored.z), regime == "paradetox"), scored.zmax)
    if not cfg.word_max:  # the version-4 design, for the before/after table
        x = x.copy()
        x[:, 5:] = 0.0
    return x


def _fit(rows: DesignRows, cfg: CombinerConfig, leave_out: str | None = None) -> SignedLogisticRegression:
    xs, ys = [], []
    for (regime, lang), sets in sorted(rows.rows.items()):
        if lang == leave_out:
            continue
        for name, label in (("toxic", 1), ("neutral", 0)) + ((("style", 0),) if cfg.style_rows else ()):
            xs.append(_matrix(sets[name], regime, cfg))
            ys.append(np.full(len(sets[name].z), label))
    # evidence columns (logits, max word logits, hit counts) non-negative, the word-list-only logits
    # at least the floor; the word-list-only indicator free
    f = cfg.wordlist_logit_floor
    return SignedLogisticRegression(cfg.C, (0.0, f, 0.0, 0.0, None, 0.0, f if cfg.word_max else 0.0)).fit(
        np.vstack(xs), np.concatenate(ys))


def _auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(positive)), np.zeros(len(negative))], np.r_[positive, negative]))


def design(rows: DesignRows, cfg: CombinerConfig = CombinerConfig()) -> dict[str, dict[str, float | None]]:
    """Per language and regime, out of sample twice over (the n-gram model and the combiner both
    fitted without that language's test pairs): AUROC toxic side vs rewrite of the stacked score, of
    the max word logit, of the n-gram logit and of the exact word-list hits; "style_matched": toxic
    side vs the same text with the rewrite's removed spans deleted (stacked, and "ngram_style_matched"
    for the logit); "neutral_05": share of the rewrites at p >= 0.5; "doubled": mean |p(s s) - p(s)|
    over them; "words_05": share of their words (4+ characters) alone at p >= 0.5 (None in zh)."""
    out: dict[str, dict[str, float | None]] = {}
    for lang in sorted({k[1] for k in rows.rows}):
        model = _fit(rows, cfg, leave_out=lang)
        for regime in ("paradetox", "wordlist"):
            sets = rows.rows[(regime, lang)]

            def p(name: str, sets: dict[str, Scored] = sets, regime: str = regime,
                  model: SignedLogisticRegression = model) -> np.ndarray:
                s = sets[name]
                logit = model.decision_function(_matrix(s, regime, cfg))
                return np.where(s.contentless, 0.0, 1.0 / (1.0 + np.exp(-logit)))

            tox, neu, idx = sets["toxic"], sets["neutral"], rows.style_of[(regime, lang)]
            out[f"{regime}:{lang}"] = {
                "stacked": _auroc(p("toxic"), p("neutral")),
                "word_max": _auroc(tox.zmax, neu.zmax),
                "ngram": _auroc(tox.z, neu.z),
                "hits": _auroc(tox.counts[:, 0] + tox.counts[:, 2], neu.counts[:, 0] + neu.counts[:, 2]),
                "style_matched": _auroc(p("toxic")[idx], p("style")),
                "ngram_style_matched": _auroc(tox.z[idx], sets["style"].z),
                "neutral_05": float((p("neutral") >= 0.5).mean()),
                "doubled": float(np.abs(p("doubled") - p("neutral")).mean()),
                "words_05": float((p("words") >= 0.5).mean()) if len(sets["words"].z) else None,
            }
    return out


def build(out: Path = BUILTIN_DIR, cfg: CombinerConfig = CombinerConfig(),
          log: Callable[[str], None] = lambda _: None) -> dict[str, object]:
    rows = design_rows(log)
    model = _fit(rows, cfg)
    ngram_manifest = json.loads((NGRAM_DIR / "manifest.json").read_text("utf-8"))
    combiner = {
        "features": list(FEATURES),
        # repr round-trips a float exactly: the file is the fit, to the last bit
        "weights": [float(w) for w in model.coef_[0]],
        "bias": float(model.intercept_[0]),
    }
    payload = json.dumps(combiner, indent=1).encode()
    out.mkdir(parents=True, exist_ok=True)
    (out / "combiner.json").write_bytes(payload)
    manifest: dict[str, object] = {
        "about": "Stacked toxicity scorer, built by `xdetox scorer build-stacked` (xdetox/scoring/stacked_build.py): "
                 "a logistic combiner of the embedded n-gram model's logit and word-list hits, fitted on multilingual "
                 "ParaDetox's held-out test pairs (OpenRAIL++, xdetox/data/paradetox/NOTICE) scored by n-gram models "
                 "built without them. Never on RTP-LX.",
        "sha256": hashlib.sha256(payload).hexdigest(),
        "ngram_model_sha256": ngram_manifest["sha256"],
        "ngram_paradetox_languages": sorted(set(ngram_manifest["languages"]) - _wordlist_only(ngram_manifest)),
        "word_lists": f"xdetox/data/lexicons/{LEXICON_DIR.name}",
        "word_lists_sha256": lists_digest(LEXICON_DIR, WORDLIST_LANGUAGES),
        "config": asdict(cfg),
        "design_rows": {f"{r}:{lang}": sum(len(v[name].z) for name in ("toxic", "neutral", "style") if
                                           name != "style" or cfg.style_rows)
                        for (r, lang), v in sorted(rows.rows.items())},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def _wordlist_only(ngram_manifest: dict[str, object]) -> set[str]:
    """Languages the released n-gram model knows only from word lists (no ParaDetox pairs)."""
    cfg = ngram_manifest["config"]
    assert isinstance(cfg, dict)
    have = set(paradetox_pairs()) - set(cfg.get("exclude_paradetox", []))
    return set(cfg["languages"]) - have

"""A local toxicity classifier: any Hugging Face sequence-classification checkpoint.

The source is a local folder, an ``s3://`` URI or a hub id (resolved by
``xdetox.models.resolve``; offline runs need hub ids in the local cache). The toxic label is
named in the spec by name (matched against ``config.id2label``) or by index; a label that the
checkpoint does not have is an error naming the labels it has. The score is the softmax
probability of that label, or its sigmoid for a multi-label checkpoint
(``problem_type == "multi_label_classification"``, or a single-logit head). Rows in languages
outside the spec's ``languages`` (when given) and empty texts get a missing score. Batched; on a GPU when present.

``max_length`` never exceeds what the model can embed: a larger value is clamped to the model's
position limit with a warning naming both numbers (a long text would otherwise crash the
position embedding lookup), and each score records whether its text was truncated.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xdetox.records import GenerationRow
from xdetox.scoring.base import Scorer, ScoreResult, missing

CLIENT_VERSION = "1"
log = logging.getLogger(__name__)
#: architectures whose position ids start after the padding index (fairseq's convention), so
#: ``max_position_embeddings`` - (pad_token_id + 1) positions hold text (514 -> 512 for XLM-R)
_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "xmod"})
#: tokenizers without a known limit report this huge placeholder (transformers' VERY_LARGE_INTEGER)
_NO_LIMIT = 1_000_000


def position_limit(config: Any, tokenizer: Any) -> int | None:
    """The most tokens the model can take, from its config and its tokenizer; None if neither says."""
    limits: list[int] = []
    max_pos = getattr(config, "max_position_embeddings", None)
    if isinstance(max_pos, int) and max_pos > 0:
        offset = (int(config.pad_token_id or 0) + 1) if config.model_type in _OFFSET_POSITIONS else 0
        limits.append(max_pos - offset)
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < _NO_LIMIT:
        limits.append(tok_max)
    return min(limits) if limits else None


def clamp_max_length(requested: int, limit: int | None) -> int:
    if limit is None or requested <= limit:
        return requested
    log.warning("scoring.max_length %d exceeds the classifier's position limit %d: using %d "
                "(longer texts are truncated; each score row records truncated=true)", requested, limit, limit)
    return limit


class ClassifierLabelError(ValueError):
    pass


def resolve_label(id2label: dict[Any, str], toxic_label: str | int) -> int:
    labels = {int(k): str(v) for k, v in id2label.items()}
    if isinstance(toxic_label, int) or (isinstance(toxic_label, str) and toxic_label.isdigit()
                                        and toxic_label not in labels.values()):
        idx = int(toxic_label)
        if idx not in labels:
            raise ClassifierLabelError(
                f"scoring.toxic_label: index {idx} is not a label of this classifier; it has {_fmt(labels)}")
        return idx
    matches = [i for i, name in labels.items() if name == toxic_label]
    if not matches:
        matches = [i for i, name in labels.items() if name.casefold() == str(toxic_label).casefold()]
    if len(matches) != 1:
        raise ClassifierLabelError(
            f"scoring.toxic_label: {toxic_label!r} is not a label of this classifier; it has {_fmt(labels)}")
    return matches[0]


def _fmt(labels: dict[int, str]) -> str:
    return ", ".join(f"{i}={n!r}" for i, n in sorted(labels.items()))


def _weights_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file() and (p.suffix in {".safetensors", ".bin"} or p.name == "config.json"):
            h.update(p.name.encode())
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:12]


class ClassifierToxicityScorer(Scorer):
    score_kind = "probability"

    def __init__(self, model: Any, tokenizer: Any, toxic_label: str | int, *, name: str, digest: str,
                 batch_size: int = 32, max_length: int = 256, languages: Sequence[str] | None = None) -> None:
        self.model, self.tokenizer = model, tokenizer
        cfg = model.config
        self.label_index = resolve_label(cfg.id2label, toxic_label)
        self.label_name = str(cfg.id2label.get(self.label_index, cfg.id2label.get(str(self.label_index), "")))
        self.multi_label = cfg.problem_type == "multi_label_classification" or cfg.num_labels == 1
        self.batch_size = batch_size
        self.max_length = clamp_max_length(max_length, position_limit(cfg, tokenizer))
        self.languages = frozenset(languages) if languages else None
        self.id = f"classifier-{name}"
        self.version = f"{digest}+label{self.label_index}+client{CLIENT_VERSION}"

    @classmethod
    def from_spec(cls, spec: Any, device: str | None = None) -> ClassifierToxicityScorer:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from xdetox.models.load import default_device
        from xdetox.models.resolve import resolve_model_source

        source = resolve_model_source(spec.model)
        device = device or default_device()
        model = AutoModelForSequenceClassification.from_pretrained(source)
        model.to(device)
        model.eval()
        tok = AutoTokenizer.from_pretrained(source)
        # Right padding: encoders put [CLS] first and use absolute positions, so left padding
        # would change their scores with the batch's longest text.
        tok.padding_side = "right"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token or tok.unk_token
            model.config.pad_token_id = tok.pad_token_id
        p = Path(source)
        digest = _weights_digest(p) if p.is_dir() else getattr(model.config, "_commit_hash", None) or "hub"
        name = p.name if p.is_dir() else spec.model.replace("/", "--")
        return cls(model, tok, spec.toxic_label, name=name.lower(), digest=str(digest), batch_size=spec.batch_size,
                   max_length=spec.max_length, languages=spec.languages)

    def supports(self, language: str) -> bool:
        return self.languages is None or language in self.languages or language.split("-")[0] in self.languages

    def probabilities(self, texts: Sequence[str]) -> list[float]:
        return [p for p, _ in self.probabilities_and_truncation(texts)]

    def probabilities_and_truncation(self, texts: Sequence[str]) -> list[tuple[float, bool]]:
        """(probability, whether the text was cut to max_length) per text."""
        import torch

        out: list[tuple[float, bool]] = []
        device = next(self.model.parameters()).device
        for i in range(0, len(texts), self.batch_size):
            chunk = list(texts[i:i + self.batch_size])
            full = self.tokenizer(chunk, truncation=False)["input_ids"]
            cut = [len(ids) > self.max_length for ids in full]
            enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt").to(device)
            with torch.inference_mode():
                logits = self.model(**enc).logits.float()
            probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
            out.extend(zip(probs[:, self.label_index].cpu().tolist(), cut, strict=True))
        return out

    def score_batch(self, rows: Sequence[GenerationRow]) -> list[ScoreResult]:
        results: list[ScoreResult | None] = [None] * len(rows)
        todo = []
        for i, r in enumerate(rows):
            if not self.supports(r.language):
                results[i] = missing(f"classifier does not support language {r.language}")
            elif not r.text.strip():
                # nothing to classify (and some tokenizers give zero tokens): missing, as for Perspective
                results[i] = missing("classifier: empty text")
            else:
                todo.append(i)
        if todo:
            probs = self.probabilities_and_truncation([rows[i].text for i in todo])
            for i, (p, cut) in zip(todo, probs, strict=True):
                results[i] = ScoreResult(toxicity=p, truncated=cut)
        return [r for r in results if r is not None]

    def close(self) -> None:
        self.model = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

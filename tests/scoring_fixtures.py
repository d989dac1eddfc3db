"""Shared fixtures for the scoring tests: generation rows, a fake Perspective server, tiny models.

The fake server speaks Perspective's real wire format: ``POST /v1alpha1/comments:analyze?key=K``
with a JSON body, answers ``attributeScores.TOXICITY.summaryScore.value`` (plus span scores and
languages, as the real service does), and Google API error bodies
(``{"error": {"code", "message", "status", "details": [...]}}``) for bad keys, bad requests and
unsupported languages. Failure scripts (429 storms, 5xx) are per-text queues of status codes.

As a quota-enforcing stand-in (issue 15): ``quota`` (queries per second over a sliding 1 s
window) answers 429 RESOURCE_EXHAUSTED to every request that arrives while the last second
already holds ``quota`` requests and counts it in ``over_quota``; ``rate_429``/``rate_503``
inject failures at random with a seeded generator; every arrival time is recorded.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from xdetox.records import GenerationRow

API_PATH = "/v1alpha1/comments:analyze"
SUPPORTED = {"ar", "zh", "cs", "nl", "en", "fr", "de", "hi", "hi-Latn", "id", "it", "ja", "ko", "pl", "pt", "ru",
             "es", "sv"}


def gen_row(text: str, language: str = "en", i: int = 0, prompt: str = "The prompt", **kw: Any) -> GenerationRow:
    base: dict[str, Any] = dict(prompt_id=f"p{i}", language=language, prompt=prompt, prompt_text=prompt,
                                sample_index=0, text=text, seed=1, model_id="m", model_digest="d", arm="base",
                                backend="transformers", prompt_set="ps", settings={})
    base.update(kw)
    return GenerationRow(**base)


def google_error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        err["details"] = details
    return json.dumps({"error": err}).encode()


def fake_score(text: str) -> float:
    """Deterministic 'toxicity' of a text: what the fake server answers."""
    return round((sum(map(ord, text)) % 97) / 100.0, 4)


class FakePerspective:
    """A local Perspective API. ``script[text]`` is a list of status codes to answer before 200."""

    def __init__(self, key: str = "test-key-123", quota: float | None = None, rate_429: float = 0.0,
                 rate_503: float = 0.0, seed: int = 0) -> None:
        self.key = key
        self.quota, self.rate_429, self.rate_503 = quota, rate_429, rate_503
        self.rng = random.Random(seed)
        self.arrivals: list[float] = []  # every analyze request that passed the key check, wall clock
        self.over_quota = 0
        self.requests: list[dict[str, Any]] = []  # {"t", "text", "languages", "status"}
        self.script: dict[str, list[int]] = defaultdict(list)
        self.unsupported: set[str] = set()  # languages answered with LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE
        self.retry_after: str | None = None
        self.lock = threading.Lock()
        self.violations: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._send(404, google_error(404, "NOT_FOUND", "Method not found."))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                status, body, headers = outer.handle(self.path, dict(self.headers), raw)
                self._send(status, body, headers)

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{API_PATH}"

    def __enter__(self) -> FakePerspective:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes, dict[str, str]]:
        t = time.time()  # wall clock: comparable with the clients' cross-process pacer
        url = urlparse(path)
        if url.path != API_PATH:
            return 404, google_error(404, "NOT_FOUND", "Method not found."), {}
        key = parse_qs(url.query).get("key", [None])[0]
        if key != self.key:
            return 400, google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com", "metadata": {"service": "commentanalyzer.googleapis.com"}}]), {}
        if not headers.get("Content-Type", headers.get("content-type", "")).startswith("application/json"):
            self.violations.append("content-type")
            return 400, google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), {}
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            self.violations.append("json")
            return 400, google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), {}
        allowed = {"comment", "requestedAttributes", "languages", "doNotStore", "context", "spanAnnotations",
                   "clientToken", "sessionId", "communityId"}
        unknown = set(body) - allowed
        text = body.get("comment", {}).get("text") if isinstance(body.get("comment"), dict) else None
        langs = body.get("languages", [])
        attrs = body.get("requestedAttributes")
        problems = []
        if unknown:
            problems.append(f"Unknown name {sorted(unknown)[0]!r}")
        if not isinstance(text, str):
            problems.append("comment.text missing")
        if not isinstance(attrs, dict) or not attrs:
            problems.append("NO_REQUESTED_ATTRIBUTES")
        if body.get("doNotStore") is not True:
            problems.append("doNotStore must be true")  # the project's own rule, checked here
        if not isinstance(langs, list) or len(langs) != 1:
            problems.append("languages must be one code")
        if problems:
            self.violations.extend(problems)
            return 400, google_error(400, "INVALID_ARGUMENT", "; ".join(problems)), {}
        with self.lock:
            over = self.quota is not None and sum(1 for a in self.arrivals if t - a < 1.0) >= self.quota
            self.arrivals.append(t)
            queued = self.script.get(text)
            status = queued.pop(0) if queued else 200
            if over:
                self.over_quota += 1
                status = 429
            elif status == 200 and self.rate_429 + self.rate_503 > 0:
                u = self.rng.random()
                status = 429 if u < self.rate_429 else 503 if u < self.rate_429 + self.rate_503 else 200
            self.requests.append({"t": t, "text": text, "languages": langs, "status": status})
        if status == 429:
            headers_out = {"Retry-After": self.retry_after} if self.retry_after else {}
            return 429, google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Analysis "
                                     "requests (AnalyzeComment)' of service 'commentanalyzer.googleapis.com'."), \
                headers_out
        if status >= 500:
            return status, google_error(status, "UNAVAILABLE" if status == 503 else "INTERNAL",
                                        "The service is currently unavailable."), {}
        if not text:  # the empty string; " " is a comment (paper 1 sends it and gets a score)
            return 400, google_error(400, "INVALID_ARGUMENT", "Comment must be non-empty.", [
                {"@type": "type.googleapis.com/google.commentanalyzer.v1alpha1.Error", "errorType": "COMMENT_EMPTY"}
            ]), {}
        lang = langs[0]
        attr = next(iter(attrs))
        if lang not in SUPPORTED or lang in self.unsupported:
            return 400, google_error(400, "INVALID_ARGUMENT", f"Attribute {attr} does not support request "
                                     f"languages: {lang}", [
                {"@type": "type.googleapis.com/google.commentanalyzer.v1alpha1.Error",
                 "errorType": "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE",
                 "languageNotSupportedByAttributeError": {"detectedLanguages": [lang], "attribute": attr,
                                                          "requestedLanguages": [lang]}}]), {}
        v = fake_score(text)
        score = {"value": v, "type": "PROBABILITY"}
        return 200, json.dumps({
            "attributeScores": {attr: {"spanScores": [{"begin": 0, "end": len(text), "score": score}],
                                       "summaryScore": score}},
            "languages": [lang], "detectedLanguages": [lang]}).encode(), {}


# --------------------------------------------------------------------------- tiny models
_CORPUS = [
    "the quick brown fox jumps over the lazy dog", "you are a stupid idiot and I hate you",
    "what a lovely day to walk in the park", "der schnelle braune Fuchs springt über den faulen Hund",
    "el rápido zorro marrón salta sobre el perro perezoso", "быстрая коричневая лиса прыгает через ленивую собаку",
    "敏捷的棕色狐狸跳过了懒狗", "素早い茶色の狐が怠け者の犬を飛び越える",
]


def build_tokenizer(folder: Path) -> Any:
    """A byte-level BPE tokenizer (trained in well under a second), saved to ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", padding_side="left")
    fast.save_pretrained(str(folder))
    return fast


def build_classifier(folder: Path, labels: list[str], multi_label: bool = False, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tok = build_tokenizer(folder)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=37, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                     num_labels=len(labels), id2label=dict(enumerate(labels)),
                     label2id={n: i for i, n in enumerate(labels)},
                     problem_type="multi_label_classification" if multi_label else "single_label_classification")
    model = BertForSequenceClassification(cfg)
    model.save_pretrained(str(folder))
    return folder


def build_causal_lm(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = build_tokenizer(folder)
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=128,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    GPT2LMHeadModel(cfg).save_pretrained(str(folder))
    return folder


def build_seq2seq(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tok = build_tokenizer(folder)
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=16, num_layers=2, num_heads=2,
                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                   decoder_start_token_id=tok.pad_token_id)
    T5ForConditionalGeneration(cfg).save_pretrained(str(folder))
    return folder


def paradetox_texts(lang: str, n: int = 400) -> Iterator[str]:
    path = Path(__file__).resolve().parents[1] / "xdetox" / "data" / "paradetox" / f"{lang}.reconstructed.jsonl"
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            yield json.loads(line)["toxic_sentence"]

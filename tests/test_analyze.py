"""The toxic-neuron analysis on a tiny random GPT-2 model built offline, and the analyze step end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from xdetox.analysis import reference
from xdetox.analysis.neurons import (
    NeuronAnalysisError,
    greedy_activations,
    intervene,
    pooled_last_hidden,
    probe_scores,
    record,
    top_value_vectors,
    train_probe,
    value_vectors,
)
from xdetox.manifest import StepManifest
from xdetox.steps import registry
from xdetox.steps.runner import run_step
from xdetox.store.local import LocalStore

ROOT = Path(__file__).resolve().parent.parent
PARADETOX = ROOT / "xdetox" / "data" / "paradetox"
# Read the vendored copy when it exists, else the shared original (another helper vendors it).
REFERENCE = (ROOT / "xdetox" / "data" / "paper-reference"
             if (ROOT / "xdetox" / "data" / "paper-reference" / reference.NEURONS_FILE).exists()
             else ROOT.parent / "shared" / "data" / "paper-reference")

LAYERS, HIDDEN, INNER = 2, 32, 64


def _sentences() -> list[str]:
    lines: list[str] = []
    for lang in ("en", "de"):
        with open(PARADETOX / f"{lang}.reconstructed.jsonl", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                lines += [row["toxic_sentence"], row["neutral_sentence"]]
    return lines


def build_tiny_gpt2(folder: Path, seed: int = 0) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_sentences(), trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                  bos_token="<|endoftext|>", padding_side="left")
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    config = GPT2Config(vocab_size=len(tok), n_positions=256, n_embd=HIDDEN, n_layer=LAYERS, n_head=2,
                        n_inner=INNER, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GPT2LMHeadModel, PreTrainedTokenizerFast]:
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    model, tok = build_tiny_gpt2(folder)
    return folder, model, tok


PROMPTS = ["you are such a", "Das ist ein", "the weather today is really", "I think"]


def test_value_vectors_and_top_k_by_cosine(tiny: Any) -> None:
    _, model, _ = tiny
    vv, inner = value_vectors(model)
    assert vv.shape == (LAYERS * INNER, HIDDEN) and inner == INNER
    target = model.transformer.h[1].mlp.c_proj.weight[5].detach().clone()  # Conv1D: rows are value vectors
    top = top_value_vectors(model, target, k=4)
    assert (top[0].layer, top[0].index) == (1, 5)
    assert top[0].cosine == pytest.approx(1.0, abs=1e-5)
    assert [t.cosine for t in top] == sorted([t.cosine for t in top], reverse=True)
    with pytest.raises(NeuronAnalysisError, match="2048 dimensions"):
        top_value_vectors(model, torch.ones(2048), k=3)


def test_intervention_edits_exactly_the_listed_neurons_and_is_undone(tiny: Any) -> None:
    _, model, tok = tiny
    ids = tok(["you are such a"], return_tensors="pt")["input_ids"]
    neurons = [(0, 3), (1, 7)]
    plain: dict[tuple[int, int], list[torch.Tensor]] = {}
    with torch.no_grad(), record(model, neurons + [(0, 4)], plain):
        logits = model(ids).logits
    edited: dict[tuple[int, int], list[torch.Tensor]] = {}
    with torch.no_grad(), intervene(model, [(0, 3)], offset=10.0), record(model, neurons + [(0, 4)], edited):
        edited_logits = model(ids).logits
    assert edited[(0, 3)][0].item() == pytest.approx(plain[(0, 3)][0].item() + 10.0, abs=1e-4)
    assert edited[(0, 4)][0].item() == pytest.approx(plain[(0, 4)][0].item(), abs=1e-6)  # same layer, untouched
    assert not torch.allclose(logits, edited_logits)  # layer 0's edit reaches the output
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, logits)  # hooks removed on exit
    scaled: dict[tuple[int, int], list[torch.Tensor]] = {}
    with torch.no_grad(), intervene(model, [(1, 7)], scale=0.0), record(model, [(1, 7)], scaled):
        model(ids)
    assert scaled[(1, 7)][0].item() == 0.0  # scale 0 ablates


def test_greedy_activations_count_positions_and_ignore_padding(tiny: Any) -> None:
    _, model, tok = tiny
    neurons = [(0, 1), (1, 2), (1, 9)]
    sink: dict[tuple[int, int], list[torch.Tensor]] = {}
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad(), record(model, neurons, sink):
        model.generate(**enc, do_sample=False, max_new_tokens=6, min_new_tokens=6, pad_token_id=tok.pad_token_id)
    assert len(sink[(1, 2)]) == 6 and sink[(1, 2)][0].shape == (len(PROMPTS),)  # one forward per new token
    batched = greedy_activations(model, tok, PROMPTS, neurons, max_new_tokens=6, batch_size=4)
    alone = [greedy_activations(model, tok, [p], neurons, max_new_tokens=6, batch_size=1) for p in PROMPTS]
    assert batched.continuations == [a.continuations[0] for a in alone]  # left padding changes nothing
    for n in neurons:
        assert batched.per_neuron[n] == pytest.approx(sum(a.per_neuron[n] for a in alone) / len(alone), abs=1e-4)
    assert batched.mean == pytest.approx(sum(batched.per_neuron.values()) / 3)
    with pytest.raises(NeuronAnalysisError, match="outside the model"):
        greedy_activations(model, tok, PROMPTS, [(5, 0)])


def test_pooled_last_hidden_matches_the_final_layer_norm_output(tiny: Any) -> None:
    _, model, tok = tiny
    feats, present = pooled_last_hidden(model, tok, ["hello there", "a much longer sentence than that one"])
    ids = tok(["hello there"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        want = model.transformer(ids)[0].mean(dim=1)[0]
    assert torch.allclose(feats[0], want, atol=1e-5) and present == [True, True]
    scores = probe_scores(model, tok, torch.ones(HIDDEN), ["hello", ""])
    assert scores[0] is not None and 0 < scores[0] < 1
    assert scores[1] is None  # an empty continuation has no score, never 0


def test_train_probe_separates_labelled_features() -> None:
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(16, generator=g)
    x = torch.randn(200, 16, generator=g)
    y = (x @ direction > 0).float()
    w = train_probe(x, y)
    assert ((x @ w > 0).float() == y).float().mean() > 0.95
    assert torch.nn.functional.cosine_similarity(w, direction, dim=0) > 0.8
    with pytest.raises(NeuronAnalysisError, match="both"):
        train_probe(x, torch.ones(200))


def test_reference_files_and_rank_comparison() -> None:
    neurons = reference.mgpt_toxic_neurons(REFERENCE)
    assert len(neurons) == 36 and len(set(neurons)) == 36
    assert all(0 <= layer < 24 and 0 <= i < 8192 for layer, i in neurons)  # mGPT: 24 layers x 8192 units
    assert len(reference.mgpt_probe(REFERENCE)) == 2048
    ref = reference.mgpt_activations(REFERENCE)
    assert len(ref["pre_dpo"]) == 17
    same = reference.compare_with_mgpt(ref["pre_dpo"], ref["post_dpo"], root=REFERENCE)
    assert same["spearman_before"] == pytest.approx(1.0) and same["spearman_after"] == pytest.approx(1.0)
    assert same["spearman_drop"] == pytest.approx(1.0)
    flipped = reference.compare_with_mgpt({k: -v for k, v in ref["pre_dpo"].items()}, root=REFERENCE)
    assert flipped["spearman_before"] == pytest.approx(-1.0) and "spearman_after" not in flipped
    assert reference.compare_with_mgpt({"en": 1.0, "de": 2.0}, root=REFERENCE)["spearman_before"] is None
    assert reference.neuron_overlap(neurons[:10] + [(0, 0)], root=REFERENCE)["overlap"] == 10
    with pytest.raises(reference.ReferenceError, match="does not exist"):
        reference.reference_dir("/no/such/folder")


def _tuned_copy(folder: Path, dest: Path) -> None:
    """A 'tuned' model: the base with layer 0's MLP input weights halved."""
    model = GPT2LMHeadModel.from_pretrained(folder)
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight.mul_(0.5)
    model.save_pretrained(dest)
    PreTrainedTokenizerFast.from_pretrained(folder).save_pretrained(dest)


def test_analyze_step_end_to_end(tiny: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _, _ = tiny
    monkeypatch.setenv("XDETOX_PAPER_REFERENCE", str(REFERENCE))
    store = LocalStore(tmp_path / "store")
    tuned_dir = tmp_path / "tuned"
    _tuned_copy(folder, tuned_dir)

    def fake_train(ctx: Any) -> dict[str, Any]:
        ctx.put_dir("", tuned_dir)
        return {}

    with registry.overridden({"train": fake_train}):
        train = StepManifest(kind="train", key="t" * 16, run_id="r", label="fake train", params={},
                             output_prefix="models/tuned")
        run_step(train, store, log=lambda m: None)
    params = {
        "model": {"id": "tiny-gpt2", "source": str(folder), "dtype": "float32", "arm": "base"},
        "probe": {"source": "train", "data": "paradetox:bundled", "languages": ["en"], "limit_per_language": 60},
        "top_k": 5,
        "positive_activation": False,  # the top 5 by cosine, unfiltered (the filter has its own test)
        "prompts": {"id": "p", "source": "paradetox:bundled", "languages": ["en", "de"], "limit_per_language": 4,
                    "paradetox_split": "test", "paradetox_side": "toxic", "template": "{prompt}"},
        "max_new_tokens": 8,
        "batch_size": 4,
        "intervention": {"offsets": [-5.0, 5.0]},
        "compare_reference": True,
    }
    manifest = StepManifest(kind="analyze", key="a" * 16, run_id="r", label="analyze", params=params,
                            inputs={"tuned": [train.key]}, output_prefix="analysis/a")
    rec, cached = run_step(manifest, store, log=lambda m: None)
    assert not cached and rec.info["neurons"] == 5
    unscored = json.loads((tmp_path / "store" / "analysis" / "a" / "analysis.json").read_text())
    assert "base_score" not in unscored["languages"]["en"] and "scorer" not in unscored  # the GPU pod scores nothing
    # its continuations, as rows: 2 languages x 4 prompts x (base + 2 offsets)
    rows = [json.loads(x) for x in (tmp_path / "store" / "analysis" / "a" / "continuations.jsonl").read_text().splitlines()]
    assert len(rows) == 24 and {r["arm"] for r in rows} == {"base", "offset -5", "offset 5"}
    out = _scored(store, tmp_path, manifest.key, "tiny-gpt2")
    assert out["probe"]["examples"] == 120 and out["probe"]["train_accuracy"] >= 0.7
    assert [n["cosine"] for n in out["neurons"]] == sorted((n["cosine"] for n in out["neurons"]), reverse=True)
    assert set(out["languages"]) == {"en", "de"}
    for lang in ("en", "de"):
        d = out["languages"][lang]
        assert d["prompts"] == 4 and len(d["base"]["per_neuron"]) == 5
        minus, plus = d["intervention"]
        assert (minus["offset"], plus["offset"]) == (-5.0, 5.0)
        assert minus["mean_activation"] < d["base"]["mean"] - 3 < d["base"]["mean"] + 3 < plus["mean_activation"]
        assert 0 < d["base_probe"] < 1 and 0 < minus["probe"] < 1
        # the run's scorer (here the lexicon) judges every continuation: 4 prompts, none missing
        for judged in (d["base_score"], minus["score"], plus["score"]):
            assert judged["n"] + judged["n_missing"] == 4 and judged["measure"] == "lexicon hit rate"
            assert 0.0 <= judged["mean"] <= 1.0
        assert d["tuned"]["mean"] != pytest.approx(d["base"]["mean"])  # tuning moved the activations
    assert out["scorer"]["score_kind"] == "hits" and out["selection"]["rule"] == "top_k"
    cmp = out["reference_comparison"]
    assert cmp["languages"] == ["de", "en"] and cmp["neurons"]["reference_count"] == 36
    probe = json.loads((tmp_path / "store" / "analysis" / "a" / "probe.json").read_text())
    assert probe["shape"] == [1, HIDDEN] and len(probe["weight"]) == HIDDEN


def _scored(store: LocalStore, tmp_path: Path, analyze_key: str, model_id: str) -> dict[str, Any]:
    """Run the analyze_score step (the run's scorer, here the lexicon) on an analyze step's rows."""
    manifest = StepManifest(kind="analyze_score", key="s" * 16, run_id="r", label="analyze score",
                            params={"scorer": {"kind": "lexicon"}, "model_id": model_id},
                            inputs={"analysis": [analyze_key]}, output_prefix="analysis/s")
    run_step(manifest, store, log=lambda m: None)
    return json.loads((tmp_path / "store" / "analysis" / "s" / "analysis.json").read_text())  # type: ignore[no-any-return]


def test_analyze_step_rejects_the_mgpt_probe_on_another_model(tiny: Any, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _, _ = tiny
    monkeypatch.setenv("XDETOX_PAPER_REFERENCE", str(REFERENCE))
    params = {"model": {"id": "tiny", "source": str(folder), "dtype": "float32"},
              "probe": {"source": "bundled:mgpt-probe"},
              "prompts": {"id": "p", "source": "bundled:xling-prompts-200", "languages": ["en"], "limit_per_language": 2}}
    manifest = StepManifest(kind="analyze", key="b" * 16, run_id="r", label="analyze", params=params,
                            output_prefix="analysis/b")
    with pytest.raises(NeuronAnalysisError, match="2048 dimensions but the model's hidden size is 32"):
        run_step(manifest, LocalStore(tmp_path / "s"), log=lambda m: None)
    assert not (tmp_path / "s" / "steps" / ("b" * 16) / "_SUCCESS.json").exists()


def test_planner_helper_params() -> None:
    from xdetox.analysis.params import analyze_params, wants_analysis

    section = {"probe": {"source": "train"}, "top_k": 12, "limit_per_language": 50, "prompt_set": "b",
               "intervention": {"offset": -2.0}, "models": None}
    assert wants_analysis(section, "mgpt", "gpt2") and not wants_analysis(section, "llama", "llama")
    assert wants_analysis({**section, "models": ["llama"]}, "llama", "llama")
    assert not wants_analysis(None, "mgpt", "gpt2")
    sets = [{"id": "a", "source": "bundled:xling-prompts-200", "languages": ["en"]},
            {"id": "b", "source": "rtp-lx:/d", "languages": ["en", "de"], "limit_per_language": 20}]
    p = analyze_params(section, {"id": "mgpt"}, {"id": "mgpt", "arm": "tuned"}, sets)
    assert p["prompts"]["id"] == "b" and p["prompts"]["limit_per_language"] == 20  # the smaller limit wins
    assert p["top_k"] == 12 and p["tuned_model"] == {"id": "mgpt", "arm": "tuned"}
    assert analyze_params({**section, "prompt_set": None}, {"id": "m"}, None, sets)["prompts"]["limit_per_language"] == 50
    with pytest.raises(ValueError, match="analysis.prompt_set"):
        analyze_params({**section, "prompt_set": "zzz"}, {"id": "m"}, None, sets)


def _gelu_new(x: float) -> float:
    """GPT-2's activation (tanh approximation), written out for the hand computation."""
    import math

    return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


#: (layer, unit) -> (cosine of its value vector with the probe, its c_fc bias = its constant pre-activation)
PLANTED = {(0, 3): (0.9, 1.0), (1, 7): (0.8, -1.0), (0, 10): (0.7, 2.0), (1, 20): (0.6, -2.0), (0, 5): (0.5, 0.5)}


def planted_model(tiny: Any) -> tuple[GPT2LMHeadModel, torch.Tensor]:
    """The tiny model with MLPs whose selection is known by hand: every c_fc weight is 0, so a unit's
    activation is gelu_new(its bias) at every position whatever the text; value vectors are built
    with a chosen cosine to the probe e0 (all others orthogonal to it)."""
    import copy

    _, model, _ = tiny
    m = copy.deepcopy(model)
    e = torch.eye(HIDDEN)
    with torch.no_grad():
        for layer, block in enumerate(m.transformer.h):
            block.mlp.c_fc.weight.zero_()
            block.mlp.c_fc.bias.zero_()  # gelu(0) = 0: not positive
            block.mlp.c_proj.weight.copy_(e[2].repeat(INNER, 1))  # Conv1D rows = value vectors, cosine 0
            for (lay, unit), (cos, bias) in PLANTED.items():
                if lay == layer:
                    block.mlp.c_proj.weight[unit] = cos * e[0] + (1 - cos ** 2) ** 0.5 * e[1]
                    block.mlp.c_fc.bias[unit] = bias
    return m, e[0]


def test_selection_keeps_the_top_cosines_whose_activation_is_positive(tiny: Any) -> None:
    from xdetox.steps.analyze import AnalyzeParamError, _neurons, select_positive

    _, _, tok = tiny
    model, probe = planted_model(tiny)
    candidates = _neurons(None, model, probe, 4)
    # top 4 by cosine: 0.9, 0.8, 0.7, 0.6 (the 0.5 one is the fifth)
    assert [(n["layer"], n["index"]) for n in candidates] == [(0, 3), (1, 7), (0, 10), (1, 20)]
    assert [n["cosine"] for n in candidates] == pytest.approx([0.9, 0.8, 0.7, 0.6], abs=1e-5)
    kept, info = select_positive(model, tok, candidates, {"en": PROMPTS[:2], "de": PROMPTS[2:]}, "en",
                                 {"max_new_tokens": 3, "batch_size": 2})
    # biases +1 and +2 give positive activations; -1 and -2 give gelu(-1) = -0.159, gelu(-2) = -0.045
    assert [(n["layer"], n["index"]) for n in kept] == [(0, 3), (0, 10)]
    assert kept[0]["selection_activation"] == pytest.approx(_gelu_new(1.0), abs=1e-4)  # 0.8412
    assert kept[1]["selection_activation"] == pytest.approx(_gelu_new(2.0), abs=1e-4)  # 1.9546
    assert info == {"candidates": 4, "kept": 2, "rule": "positive mean activation", "language": "en", "prompts": 2}
    with pytest.raises(AnalyzeParamError, match="selection_language: no 'fr' prompts"):
        select_positive(model, tok, candidates, {"en": PROMPTS}, "fr", {"max_new_tokens": 2, "batch_size": 2})


def test_analyze_step_selects_by_activation_and_scores_each_offset(tiny: Any, tmp_path: Path) -> None:
    _, _, tok = tiny
    model, probe = planted_model(tiny)
    folder = tmp_path / "planted"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    probe_file = tmp_path / "probe.json"
    probe_file.write_text(json.dumps({"weight": probe.tolist()}))
    params = {
        "model": {"id": "planted", "source": str(folder), "dtype": "float32", "arm": "base"},
        "probe": {"source": str(probe_file)}, "top_k": 5,
        "prompts": {"id": "p", "source": "bundled:xling-prompts-200", "languages": ["en", "de"],
                    "limit_per_language": 3},
        "max_new_tokens": 4, "batch_size": 3,
    }
    manifest = StepManifest(kind="analyze", key="c" * 16, run_id="r", label="analyze", params=params,
                            output_prefix="analysis/c")
    rec, _ = run_step(manifest, LocalStore(tmp_path / "store"), log=lambda m: None)
    out = _scored(LocalStore(tmp_path / "store"), tmp_path, manifest.key, "planted")
    # top 5 by cosine, of which the three with positive biases (+1, +2, +0.5) are kept, in cosine order
    assert [(n["layer"], n["index"]) for n in out["neurons"]] == [(0, 3), (0, 10), (0, 5)]
    assert out["selection"]["kept"] == 3 and out["selection"]["candidates"] == 5
    assert rec.info["neurons"] == 3 and rec.info["candidates"] == 5
    for lang in ("en", "de"):
        d = out["languages"][lang]
        # a unit's activation is gelu_new(bias) everywhere: the mean over the kept three, by hand
        assert d["base"]["mean"] == pytest.approx((_gelu_new(1.0) + _gelu_new(2.0) + _gelu_new(0.5)) / 3, abs=1e-4)
        offsets = [r["offset"] for r in d["intervention"]]
        assert offsets == [-5.0, 5.0]  # the default: paper 1's +5 and its negative
        for r in d["intervention"]:
            assert r["mean_activation"] == pytest.approx(d["base"]["mean"] + r["offset"], abs=1e-4)
            assert r["score"]["n"] + r["score"]["n_missing"] == 3

"""Encoder-decoder models (paper 2's mT5): told apart from causal LMs by their config, trained by
transformers' Seq2SeqTrainer with the recipe `xdetox plan --json` shows, sampled with the
transformers backend (vLLM does not serve T5), end to end from a spec on a tiny local mT5."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from tests.training_fixtures import build_tiny_mt5, manifest, train_params
from xdetox.cli.plan_extras import plan_json
from xdetox.plan.model import Plan
from xdetox.steps.runner import run_step
from xdetox.store import open_store

P2 = "breaking-mbad-2505.16722"
PARA = {"format": "paradetox", "path": "bundled:paradetox", "languages": ["en"], "split": "train", "max_rows": 16}


@pytest.fixture(scope="module")
def mt5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # "mt5" in the folder name: the recipe picks paper 2's mT5 family by the model source's name
    return build_tiny_mt5(tmp_path_factory.mktemp("m") / "mt5-tiny")


def _model(folder: Path) -> dict[str, Any]:
    return {"id": "mt5", "source": folder.as_uri(), "revision": None, "dtype": "float32", "architecture": "auto",
            "arm": "base"}


def test_config_decides_the_model_class(mt5_dir: Path) -> None:
    from xdetox.generation.select import backend_for_model
    from xdetox.models.load import is_seq2seq, load_causal_lm, load_lm

    assert is_seq2seq(mt5_dir)
    model, tok = load_lm(mt5_dir, "float32", "cpu")
    assert type(model).__name__ == "MT5ForConditionalGeneration" and tok.padding_side == "right"
    with pytest.raises(ValueError, match="encoder-decoder"):
        load_causal_lm(mt5_dir, "float32", "cpu")
    # vLLM does not serve T5-family models: the generate step takes transformers for them
    assert backend_for_model("vllm", mt5_dir)[0] == "transformers"
    assert backend_for_model("transformers", mt5_dir) == ("transformers", "")


def test_generation_is_the_decoders_output_after_its_start_token(mt5_dir: Path) -> None:
    """With top_p tiny the sampler keeps only the most probable token: the continuation must be the
    greedy decode computed here by hand, one decoder step at a time, from decoder_start_token_id."""
    import torch

    from xdetox.generation.backend import Request, Sampling
    from xdetox.generation.hf import TransformersBackend

    backend = TransformersBackend(mt5_dir, dtype="float32", device="cpu")
    model, tok = backend.model, backend.tokenizer
    prompts = ["you are a", "what the hell is this thing"]
    sampling = Sampling(samples=1, temperature=1.0, top_p=1e-9, max_new_tokens=4)
    got = backend.generate([Request(p, seed=i) for i, p in enumerate(prompts)], sampling)
    for prompt, (cont,) in zip(prompts, got, strict=True):
        enc = tok([prompt], return_tensors="pt")
        dec = [model.config.decoder_start_token_id]
        with torch.inference_mode():
            for _ in range(4):
                logits = model(**enc, decoder_input_ids=torch.tensor([dec])).logits[0, -1]
                dec.append(int(logits.argmax()))
                if dec[-1] == tok.eos_token_id:
                    break
        expected = dec[1:]  # the start token is not part of the continuation
        assert cont.num_tokens == len(expected)
        assert cont.text == tok.decode(expected, skip_special_tokens=True)
    # a prompt's samples do not depend on its batch-mates (right padding under the encoder's mask)
    alone = backend.generate([Request(prompts[0], seed=0)], Sampling(3, 0.9, 0.9, 5))
    batched = backend.generate([Request(prompts[1], seed=1), Request(prompts[0], seed=0)], Sampling(3, 0.9, 0.9, 5))
    assert alone[0] == batched[1]


class _Stop(Exception):
    pass


def test_seq2seq_trainer_receives_exactly_what_the_plan_shows(tmp_path: Path, mt5_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    captured: dict[str, Any] = {}

    class Capture:
        def __init__(self, **kw: Any) -> None:
            captured.update(kw)
            raise _Stop

    monkeypatch.setattr(transformers, "Seq2SeqTrainer", Capture)
    store = open_store((tmp_path / "store" / "runs" / "r").as_uri())
    params = train_params(3, method="sft", preset=P2, data=PARA,
                          peft={"mode": "lora", "r": 16, "alpha": 32, "dropout": 0.05})
    params["model"] = _model(mt5_dir)
    m = manifest("train", params)
    shown = plan_json(Plan(run_id="t", spec_digest="d", settings=[], steps=[m], report_key="r"))
    settings = next(s for s in shown["steps"] if s["kind"] == "train")["trainer_settings"]
    # paper 2's mT5 script: 20 epochs, batch 12 x 4, lr 2e-4, paged AdamW, LoRA r16/a32 on q and v
    assert settings["trl"]["num_train_epochs"] == 20.0 and settings["trl"]["per_device_train_batch_size"] == 12
    assert settings["trl"]["gradient_accumulation_steps"] == 4 and settings["lora"]["target_modules"] == ["q", "v"]
    with contextlib.suppress(_Stop):
        run_step(m, store, log=lambda s: None)
    cfg = captured["args"]
    assert type(cfg).__name__ == "Seq2SeqTrainingArguments"
    for name, value in settings["trl"].items():
        # max_length is applied when tokenizing (checked below); without a validation split (paper 2
        # has none) there is no evaluation, so eval_steps and early stopping are not passed
        if name in {"early_stopping_patience", "max_length", "eval_steps"}:
            continue
        if name in {"beta", "loss_type"}:  # DPO's: none for SFT
            assert value is None, name
            continue
        got = getattr(cfg, name)
        got = getattr(got, "value", got)
        assert got == value, name
    assert captured["eval_dataset"] is None and cfg.eval_strategy.value == "no"
    lora = captured["model"].peft_config["default"]
    assert lora.task_type == "SEQ_2_SEQ_LM" and sorted(lora.target_modules) == ["q", "v"]
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (16, 32, 0.05)
    # the encoder reads the toxic sentence itself (no template), the labels are its neutral rewrite
    row = captured["train_dataset"][0]
    tok = captured["processing_class"]
    assert row["prompt"] == "that s some pretty shit logic ."
    assert row["input_ids"] == tok(row["prompt"])["input_ids"] + [tok.eos_token_id]
    assert row["labels"] == tok(row["completion"])["input_ids"] + [tok.eos_token_id]


def test_dpo_of_a_seq2seq_model_is_refused_by_name(tmp_path: Path, mt5_dir: Path) -> None:
    from xdetox.spec.recipes import resolve
    from xdetox.training.data import load_training_set
    from xdetox.training.trainer import train

    training = {"method": "dpo", "preset": None, "peft": None, "hyper": {}}
    hyper, peft = resolve(training, str(mt5_dir))
    ts = load_training_set(PARA, "dpo")
    with pytest.raises(ValueError, match="encoder-decoder"):
        train(str(mt5_dir), ts, "dpo", hyper, peft, 1, tmp_path / "o", tmp_path / "w", log=lambda s: None)


def test_plan_train_generate_end_to_end(tmp_path: Path, mt5_dir: Path) -> None:
    """A spec naming a local mT5 plans, trains (LoRA on q/v, paper 2's recipe cut to 2 steps),
    generates base and tuned continuations and takes each arm's own perplexity of them (the
    perplexity step), on CPU."""
    from xdetox.executors.local import run_plan
    from xdetox.executors.publish import publish, run_store
    from xdetox.plan import plan
    from xdetox.spec import load_spec

    spec = {
        "name": "mt5-e2e", "store": (tmp_path / "store").as_uri(), "seed": 1,
        "models": [{"id": "mt5", "source": mt5_dir.as_uri(), "dtype": "float32"}],
        "training": {"method": "sft", "preset": P2, "data": PARA,
                     "peft": {"mode": "lora", "r": 16, "alpha": 32, "dropout": 0.05},
                     "hyper": {"max_steps": 2, "batch_size": 4, "gradient_accumulation_steps": 1}},
        "prompts": [{"id": "p", "source": "bundled:xling-prompts-200", "languages": ["en"], "limit_per_language": 3}],
        "generation": {"samples": 2, "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 6,
                       "backend": "transformers"},
        "scoring": {"kind": "lexicon"},
        # paper 2's knowledge preservation: each completion under the (seq2seq) model that wrote it
        "metrics": {"perplexity": {"reference": "self", "text": "completion"}},
        "compare_base": True,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    p = plan(load_spec(path))
    rs = run_store(open_store(spec["store"]), p.run_id)
    publish(p, rs, path.read_text())
    result = run_plan(p, rs, console=Console(quiet=True), show_progress=False,
                      only=lambda s: s.kind in {"train", "generate", "perplexity"})
    assert result.failed is None
    trains = [s for s in p.steps if s.kind == "train"]
    gens = [s for s in p.steps if s.kind == "generate"]
    assert len(trains) == 1 and {s.params["model"]["arm"] for s in gens} == {"base", "tuned"}
    from xdetox.steps.runner import read_commit

    info = read_commit(rs, trains[0].key).info
    assert info["architecture"] == "seq2seq" and info["steps"] == 2 and info["peft_mode"] == "lora"
    for g in gens:
        rows = [json.loads(line) for k in rs.list(g.output_prefix + "/") if k.endswith(".jsonl")
                for line in rs.get_text(k).splitlines()]
        assert len(rows) == 3 * 2 and {r["backend"] for r in rows} == {"transformers"}
        assert all(0 < r["num_tokens"] <= 6 for r in rows)
    by_key = p.by_key()
    for sc in (s for s in p.steps if s.kind == "perplexity"):
        (gk,) = sc.inputs["generations"]
        texts = {(r["prompt_id"], r["sample_index"]): r["text"]
                 for k in rs.list(by_key[gk].output_prefix + "/") if k.endswith(".jsonl")
                 for line in rs.get_text(k).splitlines() for r in [json.loads(line)]}
        rows = [{**json.loads(line), "text": texts[(json.loads(line)["prompt_id"], json.loads(line)["sample_index"])]}
                for k in rs.list(sc.output_prefix + "/") if k.endswith(".jsonl")
                for line in rs.get_text(k).splitlines()]
        assert len(rows) == 6
        # a finite perplexity for every non-blank completion, none (missing, not 0) for a blank one
        assert all((r["perplexity"] is None) == (not r["text"].strip()) for r in rows)
        assert all(r["perplexity"] is None or r["perplexity"] > 1.0 for r in rows)


class _Preempted(Exception):
    pass


def test_seq2seq_training_resumes_to_the_uninterrupted_result(tmp_path: Path, mt5_dir: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Seq2SeqTrainer resumes from the step's kept checkpoint like TRL's trainers: a run preempted
    after its first checkpoint, then rerun, commits the same bytes as one run straight through."""
    from xdetox.steps.runner import read_commit
    from xdetox.store.partial import PartialState

    hyper = {"max_steps": 4, "save_steps": 2, "batch_size": 4, "gradient_accumulation_steps": 1,
             "learning_rate": 1e-3, "optimizer": "adamw_torch"}
    params = train_params(5, method="sft", preset=P2, data=PARA, peft={"mode": "full"}, hyper=hyper)
    params["model"] = _model(mt5_dir)
    m = manifest("train", params)

    straight = open_store((tmp_path / "a").as_uri())
    run_step(m, straight, log=lambda s: None)
    real_save = PartialState.put_checkpoint

    def preempted(self: Any, path: Path, done: int) -> None:
        real_save(self, path, done)
        raise _Preempted(path.name)

    resumed = open_store((tmp_path / "b").as_uri())
    monkeypatch.setattr(PartialState, "put_checkpoint", preempted)
    with pytest.raises(_Preempted):
        run_step(m, resumed, log=lambda s: None)
    monkeypatch.setattr(PartialState, "put_checkpoint", real_save)
    rec, _ = run_step(m, resumed, log=lambda s: None)
    assert rec.info["resumed_from"] == "checkpoint-2" and rec.info["steps"] == 4
    assert rec.info["architecture"] == "seq2seq"
    digests = {o.key: o.sha256 for o in read_commit(straight, m.key).outputs}
    assert {o.key: o.sha256 for o in rec.outputs} == digests

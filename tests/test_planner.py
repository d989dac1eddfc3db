"""Planner: stable content-derived keys, sensitivity to every parameter, shared steps across a matrix."""

from __future__ import annotations

import copy

import pytest

from xdetox.plan import plan
from xdetox.spec import ExperimentSpec

BASE = {
    "name": "p",
    "models": [{"id": "tiny", "source": "builtin:tiny"}],
    "training": {"method": "dpo", "data": {"format": "paradetox", "path": "bundled:paradetox"}},
    "prompts": [{"id": "x", "source": "bundled:xling-prompts-200", "languages": ["en", "de"]}],
    "sharding": {"generate": 3},
}


def _spec(**changes: object) -> ExperimentSpec:
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        cur = data
        parts = path.split("__")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})  # type: ignore[assignment]
        cur[parts[-1]] = value  # type: ignore[index]
    return ExperimentSpec.model_validate(data)


def _keys(spec: ExperimentSpec) -> dict[str, str]:
    return {s.label: s.key for s in plan(spec).steps}


def test_keys_are_stable_across_runs() -> None:
    a, b = plan(_spec()), plan(_spec())
    assert [s.key for s in a.steps] == [s.key for s in b.steps]
    assert a.model_dump() == b.model_dump()
    assert all(len(s.key) == 16 and int(s.key, 16) >= 0 for s in a.steps)


def test_plan_shape_and_shards() -> None:
    p = plan(_spec())
    assert p.counts() == {"build_model": 1, "train": 1, "generate": 6, "score": 6, "evaluate": 1, "report": 1}
    by_key = p.by_key()
    position = {s.key: i for i, s in enumerate(p.steps)}
    for s in p.steps:  # dependency order
        assert all(position[d] < position[s.key] for d in s.deps())
    gens = [s for s in p.steps if s.kind == "generate"]
    assert sorted((s.params["model"]["arm"], s.shard.index) for s in gens) == [  # type: ignore[union-attr]
        ("base", 0), ("base", 1), ("base", 2), ("tuned", 0), ("tuned", 1), ("tuned", 2)]
    # every shard of a group writes under one prefix, one file per shard
    assert len({s.output_prefix for s in gens}) == 2
    for s in p.steps:
        if s.kind == "score":
            (g,) = s.inputs["generations"]
            assert by_key[g].shard == s.shard
    assert p.report_key == p.steps[-1].key


@pytest.mark.parametrize(
    "change",
    [
        {"generation__temperature": 0.7},
        {"generation__samples": 5},
        {"generation__seed": 7},
        {"seed": 99},
        {"training__hyper": {"learning_rate": 1e-4}},
        {"training__data": {"format": "paradetox", "path": "bundled:paradetox", "languages": ["de"]}},
        {"scoring": {"kind": "perspective"}},
        {"prompts": [{"id": "x", "source": "bundled:xling-prompts-200", "languages": ["en", "fr"]}]},
    ],
)
def test_any_parameter_change_changes_dependent_keys(change: dict) -> None:
    before, after = _keys(_spec()), _keys(_spec(**change))
    assert before != after
    assert before["report"] != after["report"]  # the report depends on everything


def test_change_recomputes_only_dependents() -> None:
    before, after = _keys(_spec()), _keys(_spec(scoring={"kind": "perspective"}))
    for label in before:
        if label.startswith(("build", "train", "generate")):
            assert before[label] == after[label], label  # upstream of scoring: unchanged
        if label.startswith(("score", "evaluate", "report")):
            assert before[label] != after[label], label


def test_matrix_shares_identical_steps() -> None:
    langs = [["en"], ["de"], ["es"], ["ru"]]
    spec = _spec(matrix={"training.data.languages": langs})
    p = plan(spec)
    assert len(p.settings) == 4
    counts = p.counts()
    assert counts["build_model"] == 1  # one base model for all settings
    assert counts["train"] == 4
    # base generations are shared: 3 shards for base + 3 per tuned model
    assert counts["generate"] == 3 + 4 * 3
    assert counts["evaluate"] == 4 and counts["report"] == 1
    # N settings sharing one training step plan it once
    shared = _spec(matrix={"generation.temperature": [0.5, 0.7, 0.9]})
    ps = plan(shared)
    assert ps.counts()["train"] == 1 and len(ps.settings) == 3
    assert len({k for s in ps.settings for k in s.train_keys}) == 1


def test_variants_multiply_with_matrix() -> None:
    spec = _spec(
        variants=[{"label": "zero-shot", "training.method": "none"}, {"label": "xling"}],
        matrix={"training.data.languages": [["en"], ["de"]]},
    )
    p = plan(spec)
    assert len(p.settings) == 4
    assert p.counts()["train"] == 2  # zero-shot settings train nothing


def test_planner_does_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    def no_open(*a: object, **k: object) -> None:
        raise AssertionError("planner opened a file")

    spec = _spec()
    monkeypatch.setattr(builtins, "open", no_open)
    assert plan(spec).steps


def test_self_perplexity_gives_perplexity_steps_the_generating_model() -> None:
    spec = _spec(metrics={"perplexity": {"reference": "self", "text": "prompt"}})
    p = plan(spec)
    by_key = p.by_key()
    ppl_steps = [s for s in p.steps if s.kind == "perplexity"]
    score_steps = [s for s in p.steps if s.kind == "score"]
    assert ppl_steps and len(ppl_steps) == len(score_steps)  # one per generate shard, beside its score
    for s in ppl_steps:
        (g,) = s.inputs["generations"]
        assert s.inputs["model"] == by_key[g].inputs["model"]  # the model that generated the rows
        assert s.params["model"]["arm"] == by_key[g].params["model"]["arm"]
    # the score step no longer computes perplexity: no model input, no GPU reason
    for s in score_steps:
        assert "model" not in s.inputs and s.params["perplexity"] is None
    plain = plan(_spec(metrics={"perplexity": {"reference": "/models/ref"}}))
    assert all("model" not in s.inputs for s in plain.steps if s.kind == "perplexity")


def test_evaluate_reads_scores_and_perplexities_shard_by_shard() -> None:
    p = plan(_spec(metrics={"perplexity": {"reference": "/models/ref"}}))
    by_key = p.by_key()
    (ev,) = [s for s in p.steps if s.kind == "evaluate"]
    for arm in ev.params["arms"]:
        scores, ppls = ev.inputs[arm["input"]], ev.inputs[arm["perplexity_input"]]
        assert len(scores) == len(ppls) > 0
        for sk, pk in zip(scores, ppls, strict=True):  # same generate shard, same position
            assert by_key[sk].inputs["generations"] == by_key[pk].inputs["generations"]
    # without perplexity: no perplexity step, and the score keys do not change with the metric
    none = plan(_spec())
    assert not [s for s in none.steps if s.kind == "perplexity"]
    assert {s.key for s in none.steps if s.kind == "score"} == {s.key for s in p.steps if s.kind == "score"}



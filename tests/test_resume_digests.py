"""Every step kind, interrupted midway and resumed, commits the same bytes as an uninterrupted run
(issue 14 item 3).

The spec (tests/resume_spec.yaml) plans every step kind at toy sizes. One run goes through
uninterrupted; in a second store each step is first killed midway, then resumed. The fault comes
from the test side: right after the step's first stored piece (a generate or score chunk, a
trainer checkpoint, else its first output file) a BaseException is raised, which no step code
catches, the way a kill leaves a step's store behind: partial state or half the outputs, no
commit record. The resumed step must reuse what was stored where it can (chunks, checkpoint) and
commit outputs whose sha256 equal the uninterrupted run's, for every step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xdetox.executors.local import run_plan
from xdetox.executors.publish import publish, run_store
from xdetox.kinds import scorers as scorer_kinds
from xdetox.manifest import partial_prefix
from xdetox.models import tiny
from xdetox.plan import Plan, plan
from xdetox.spec import load_spec
from xdetox.steps.context import StepContext
from xdetox.steps.runner import is_committed, read_commit, run_step
from xdetox.store import Store, open_store
from xdetox.store.partial import PartialState, read_progress

SPEC = Path(__file__).parent / "resume_spec.yaml"
EVERY_KIND = {"build_model", "train", "generate", "score", "perplexity", "align", "analyze", "analyze_score", "evaluate",
              "report"}


class Killed(BaseException):
    """The test's kill: not an Exception, so no step code catches it."""


def _digests(store: Store, p: Plan) -> dict[str, list[tuple[str, str]]]:
    return {st.key: [(o.key, o.sha256) for o in read_commit(store, st.key).outputs] for st in p.steps}


@pytest.mark.slow
def test_every_step_kind_resumes_to_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # toy sizes, the same for both runs: a quick tiny-model build, score chunks of 8 rows
    defaults = tiny.tiny_defaults
    monkeypatch.setattr(tiny, "tiny_defaults", lambda: {**defaults(), "train_steps": 8, "batch_size": 8, "seq_len": 32})
    lex = scorer_kinds.get("lexicon")
    monkeypatch.setitem(scorer_kinds._KINDS, "lexicon", dataclasses.replace(lex, chunk_rows=lambda s: 8))
    p = plan(load_spec(SPEC))
    assert {st.kind for st in p.steps} == EVERY_KIND

    clean = run_store(open_store((tmp_path / "clean").as_uri()), p.run_id)
    publish(p, clean, None)
    run_plan(p, clean, show_progress=False)
    want = _digests(clean, p)

    fault: dict[str, Any] = {"armed": False, "at": None}

    def kill_after(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            out = real(self, *args, **kwargs)
            if fault["armed"]:
                fault.update(armed=False, at=name)
                raise Killed(name)
            return out
        return wrapper

    for cls, name in ((PartialState, "put_chunk"), (PartialState, "put_checkpoint"),
                      (StepContext, "put_file"), (StepContext, "put_bytes")):
        monkeypatch.setattr(cls, name, kill_after(name, getattr(cls, name)))

    store = run_store(open_store((tmp_path / "killed").as_uri()), p.run_id)
    publish(p, store, None)
    killed_at: dict[str, str] = {}
    resumed: dict[str, dict[str, Any]] = {}
    for st in p.steps:
        fault.update(armed=True, at=None)
        with pytest.raises(Killed):
            run_step(st, store, log=lambda _m: None)
        killed_at[st.key] = fault["at"]
        assert not is_committed(store, st.key), st.label
        if fault["at"] in {"put_chunk", "put_checkpoint"}:
            progress = read_progress(store, partial_prefix(st.key))  # what `xdetox status` shows
            assert progress is not None and progress.done > 0, st.label
        record, cached = run_step(st, store, log=lambda _m: None)
        assert not cached
        resumed[st.key] = record.info

    # each kind was killed midway: the chunked ones after a stored piece, which the resume reused
    by_kind: dict[str, set[str]] = {}
    for st in p.steps:
        by_kind.setdefault(st.kind, set()).add(killed_at[st.key])
    assert by_kind["generate"] == {"put_chunk"} and by_kind["score"] == {"put_chunk"}
    assert by_kind["train"] == {"put_checkpoint"}
    for st in p.steps:
        if st.kind == "generate":
            assert resumed[st.key]["chunks_reused"] == 1 and resumed[st.key]["chunks_generated"] == 1, st.label
        elif st.kind == "score":
            assert resumed[st.key]["resumed_rows"] == 8, st.label
        elif st.kind == "train":
            assert resumed[st.key]["resumed_from"] == "checkpoint-2"
    assert not [k for k in store.list("steps/") if "/partial/" in k]  # nothing left behind

    got = _digests(store, p)
    differ = {st.label: sorted(set(got[st.key]) ^ set(want[st.key])) for st in p.steps if got[st.key] != want[st.key]}
    assert not differ

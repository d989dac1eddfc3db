"""The resumable partial-state helper every chunked step uses (issue 11 item 3), on both stores:
numbered chunks, the latest checkpoint folder, progress that never runs ahead of what is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from xdetox.store import open_store
from xdetox.store.partial import PartialState, read_progress

PREFIX = "steps/k1/partial"


def _chunk(tmp_path: Path, name: str, lines: list[str]) -> Path:
    p = tmp_path / name
    p.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return p


def test_chunks_are_counted_without_gaps_concatenated_in_order_and_cleared(store_uri: str, tmp_path: Path) -> None:
    store = open_store(store_uri).child("runs/r")
    partial = PartialState(store, PREFIX, "rows", total=5)
    assert partial.stored_chunks() == 0 and partial.progress() is None
    partial.put_chunk(0, _chunk(tmp_path, "a", ["r0", "r1"]), done=2)
    partial.put_chunk(1, _chunk(tmp_path, "b", ["r2", "r3"]), done=4)
    partial.put_chunk(3, _chunk(tmp_path, "d", ["orphan"]), done=9)  # after a gap: not resumable
    assert partial.stored_chunks() == 2
    assert list(partial.chunk_lines(1)) == ["r2\n", "r3\n"]
    dest = tmp_path / "out.jsonl"
    assert partial.concatenate(2, dest, tmp_path) == 4
    assert dest.read_text() == "r0\nr1\nr2\nr3\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("fetched-")]  # downloads released
    with pytest.raises(RuntimeError, match="chunk-00002.jsonl vanished"):
        partial.concatenate(3, dest, tmp_path)
    # 4 objects (chunks 0, 1 and 3, progress.json), and nothing after clear()
    assert partial.clear() == 4
    assert store.list(PREFIX + "/") == [] and read_progress(store, PREFIX) is None


def test_progress_is_what_the_last_stored_piece_counted(store_uri: str, tmp_path: Path) -> None:
    store = open_store(store_uri).child("runs/r")
    partial = PartialState(store, PREFIX, "prompts", total=120)
    partial.put_chunk(0, _chunk(tmp_path, "a", ["x"]), done=48)
    partial.put_chunk(1, _chunk(tmp_path, "b", ["y"]), done=96)
    got = read_progress(store, PREFIX)
    assert got is not None and got.as_dict() == {"done": 96, "total": 120, "unit": "prompts", "pieces": 2}
    assert got.text() == "96 of 120 prompts"
    store.put_text(f"{PREFIX}/progress.json", "{not json")
    assert read_progress(store, PREFIX) is None  # a torn or foreign file: no progress, no crash


def test_the_latest_checkpoint_is_whole_and_replaces_the_older_one(store_uri: str, tmp_path: Path) -> None:
    store = open_store(store_uri).child("runs/r")
    partial = PartialState(store, PREFIX, "steps", total=4)
    assert partial.latest_checkpoint(tmp_path / "none") is None
    for step in (2, 4):
        ck = tmp_path / f"checkpoint-{step}"
        (ck / "sub").mkdir(parents=True)
        (ck / "weights.bin").write_bytes(bytes([step]) * 3)
        (ck / "sub" / "state.json").write_text(f'{{"step": {step}}}')
        partial.put_checkpoint(ck, done=step)
    assert sorted(store.list(PREFIX + "/")) == [
        f"{PREFIX}/LATEST", f"{PREFIX}/checkpoint-4/sub/state.json", f"{PREFIX}/checkpoint-4/weights.bin",
        f"{PREFIX}/progress.json"]
    got = partial.latest_checkpoint(tmp_path / "resume")
    assert got == tmp_path / "resume" / "checkpoint-4"
    assert (got / "weights.bin").read_bytes() == b"\x04\x04\x04" and (got / "sub" / "state.json").read_text() == '{"step": 4}'
    progress = read_progress(store, PREFIX)
    assert progress is not None and (progress.done, progress.total, progress.pieces) == (4, 4, 1)
    # LATEST naming a checkpoint whose files are gone (a half-deleted store): start over, not crash
    store.put_text(f"{PREFIX}/LATEST", "checkpoint-9")
    assert partial.latest_checkpoint(tmp_path / "again") is None

"""docs/FIDELITY.md's training table agrees with the recipes the trainer uses (xdetox/spec/recipes.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from xdetox.spec.recipes import PRESETS, resolve

DOC = Path(__file__).resolve().parents[1] / "docs" / "FIDELITY.md"
# a model source per family key of the table, so resolve() picks that family's override
SOURCES = {"-": "ai-forever/mGPT", "llama": "meta-llama/Llama-2-7b-hf", "aya": "CohereForAI/aya-23-8B",
           "bloom": "bigscience/bloom-7b1", "mt5": "google/mt5-large"}


def _rows() -> list[dict[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Training recipes", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in ln.strip("|").split("|")), strict=True)) for ln in lines[2:]]


def _value(cell: str) -> Any:
    v = yaml.safe_load(cell.strip().strip("`"))
    if isinstance(v, str):  # YAML 1.1 reads 1e-5 as a string
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _resolved(key: str) -> Any:
    where, name = key.split(":")
    preset, family, mode = where.split("/")
    method = PRESETS[preset]["method"]
    training = {"method": method, "preset": preset, "hyper": {},
                "peft": {"mode": mode, "r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"}}
    hyper, peft = resolve(training, SOURCES[family])
    return hyper[name] if name in hyper else peft[name]


ROWS = _rows()


def test_table_parses() -> None:
    assert len(ROWS) >= 40
    assert all(r["Status"] == "as paper" or r["Status"].startswith("deviation:") for r in ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[r["Key"] for r in ROWS])
def test_row_matches_recipe(row: dict[str, str]) -> None:
    ours = _value(row["Ours"])
    assert ours == _resolved(row["Key"]), f"{row['Setting']}: table says {ours}, recipe resolves to {_resolved(row['Key'])}"
    if row["Status"] == "as paper":
        assert _value(row["Paper"]) == ours, f"{row['Setting']} is marked 'as paper' but differs"


def test_every_preset_setting_has_a_row() -> None:
    keys = {r["Key"] for r in ROWS}
    for name, preset in PRESETS.items():
        have = {k.split(":")[1] for k in keys if k.startswith(name + "/")}
        missing = (set(preset["hyper"]) | set(preset["peft"])) - have
        assert not missing, f"{name}: no FIDELITY.md row for {sorted(missing)}"
        # a family's override value is covered by a row for it, or for a family with the same value
        fams = preset.get("families", {})
        for fam, override in fams.items():
            values = {**override["hyper"], **override["peft"]}
            for setting, value in values.items():
                covered = any(f"{name}/{f2}/qlora:{setting}" in keys
                              and {**o2["hyper"], **o2["peft"]}.get(setting) == value for f2, o2 in fams.items())
                assert covered, f"{name} family {fam}: no FIDELITY.md row for {setting} = {value!r}"

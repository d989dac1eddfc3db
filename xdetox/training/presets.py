"""Hyper-parameter presets named after the papers: the table lives in ``xdetox.spec.recipes``
(pure, so the planner and docs read it too); this module keeps the train step's import path."""

from __future__ import annotations

from xdetox.spec.recipes import DEFAULTS, PEFT_DEFAULTS, PRESETS, PresetError, resolve, trainer_settings

__all__ = ["DEFAULTS", "PEFT_DEFAULTS", "PRESETS", "PresetError", "resolve", "trainer_settings"]

"""Spec -> plan (a DAG of step manifests). Pure: no I/O."""

from xdetox.plan.model import Plan, SettingInfo
from xdetox.plan.planner import plan

__all__ = ["Plan", "SettingInfo", "plan"]

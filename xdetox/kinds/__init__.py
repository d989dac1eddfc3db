"""Kind declarations: each scorer kind and step kind says in one module what it is, what it needs
and where its implementation lives; everything else (spec validation, planner, estimator, Argo
renderer, report) reads those declarations instead of switching on a kind's name.

- ``xdetox.kinds.scorers``: scorer kinds (lowest layer: imports only xdetox.fields and Pydantic).

This package imports nothing itself, so each sub-registry sits in its own import-linter layer.
"""

"""The Argo executor: render a plan as Argo Workflows (Hera), validate, publish and submit it."""

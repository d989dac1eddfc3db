"""The exit codes every xdetox command and step uses, in one place at the bottom of the layering:
the CLI exits with them and the Argo renderer's retry expression reads them (executors may not
import the CLI, so the codes live below both)."""

from __future__ import annotations

EXIT_FAILED = 1  # a step or a store failed while running
EXIT_INVALID = 2  # bad input: spec, manifest, data, options
EXIT_RETRIABLE = 75  # EX_TEMPFAIL: a transient failure; the Argo workflow retries it

"""Third-party output follows the CLI's verbosity (issue 17 item 5)."""

from __future__ import annotations

import logging
import warnings

import pytest
from typer.testing import CliRunner

from xdetox.cli import app
from xdetox.cli.library_output import LIBRARY_LOGGERS, QUIET_ENV, configure_library_output


@pytest.fixture
def clean_state(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for key in QUIET_ENV:
        monkeypatch.delenv(key, raising=False)
    levels = {n: logging.getLogger(n).level for n in LIBRARY_LOGGERS}
    with warnings.catch_warnings():
        yield monkeypatch
    for n, level in levels.items():
        logging.getLogger(n).setLevel(level)


def _warn_from(module: str) -> list[warnings.WarningMessage]:
    """Issue a FutureWarning attributed to ``module`` (as a library's own warn() call would be)."""
    with warnings.catch_warnings(record=True) as caught:
        # keep the filters configure_library_output installed, only record instead of printing
        warnings.warn_explicit("old API", FutureWarning, filename="x.py", lineno=1, module=module,
                               registry={})
    return caught


def test_quiet_by_default_hides_library_warnings_logs_and_bars(clean_state) -> None:  # type: ignore[no-untyped-def]
    configure_library_output(verbose=False)
    import os

    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    assert logging.getLogger("transformers").getEffectiveLevel() == logging.ERROR
    assert not logging.getLogger("transformers.modeling_utils").isEnabledFor(logging.WARNING)
    assert _warn_from("transformers.modeling_utils") == []
    # xdetox's own warnings are not hidden
    assert [str(w.message) for w in _warn_from("xdetox.steps.train")] == ["old API"]


def test_user_setting_is_kept(clean_state) -> None:  # type: ignore[no-untyped-def]
    clean_state.setenv("TRANSFORMERS_VERBOSITY", "debug")
    configure_library_output(verbose=False)
    import os

    assert os.environ["TRANSFORMERS_VERBOSITY"] == "debug"


def test_verbose_shows_library_output(clean_state) -> None:  # type: ignore[no-untyped-def]
    configure_library_output(verbose=True)
    import os

    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    assert logging.getLogger("transformers").isEnabledFor(logging.INFO)
    assert len(_warn_from("transformers.modeling_utils")) == 1


def test_cli_flag_reaches_the_configuration(clean_state) -> None:  # type: ignore[no-untyped-def]
    import os

    r = CliRunner().invoke(app, ["-v", "validate", "jobs/smoke.yaml"])
    assert r.exit_code == 0, r.output
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ
    r = CliRunner().invoke(app, ["validate", "jobs/smoke.yaml"])
    assert r.exit_code == 0, r.output
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"

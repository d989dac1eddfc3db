"""Third-party output follows the CLI's verbosity: quiet by default, everything with ``-v``.

transformers, huggingface_hub, datasets, torch and TRL print deprecation warnings, advisory
notices and tqdm bars ("Loading weights") straight to the terminal, between the CLI's Rich lines,
where they read like errors. They are configured here before any of them is imported (the steps
import them lazily), through the switches each library documents: its environment variables
(read at import) and the standard ``logging`` and ``warnings`` modules. Steps run in this process,
and the environment also reaches any child process they start.
"""

from __future__ import annotations

import logging
import os
import warnings

# Loggers of the libraries the steps use; xdetox's own loggers are left alone.
LIBRARY_LOGGERS = ("transformers", "huggingface_hub", "datasets", "torch", "trl", "peft", "accelerate",
                   "tokenizers", "jieba", "urllib3", "botocore", "boto3", "httpx", "filelock")

# Environment switches each library reads at import time (set only when the user has not).
QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # also transformers' own tqdm (utils/logging.py reads it)
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DATASETS_VERBOSITY": "error",
}


def configure_library_output(verbose: bool) -> None:
    """Quiet (default): third-party loggers at ERROR, their deprecation/future warnings and
    progress bars off. Verbose: their INFO logs and every warning are shown."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info")
        warnings.simplefilter("default")
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
    # xdetox's own warnings stay visible (filters added later take precedence).
    warnings.filterwarnings("default", module=r"xdetox(\.|$)")

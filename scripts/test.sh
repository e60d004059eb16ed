#!/usr/bin/env bash
# Set up (scripts/bootstrap.sh) and run the whole test suite: ruff, mypy, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "== ruff" >&2
.venv/bin/ruff check triage hashsets tests benchmarks scripts
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"

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
# In TRIAGE_TEST_WORKERS processes (pytest-xdist; default 2, the CI machine's cores; 0: in
# this process), one test file per process at a time (--dist loadfile: a module's fixtures
# are built once). docs/testing.md "Running the tests in parallel". Later options in "$@"
# win (e.g. -n 0).
.venv/bin/python -m pytest -q -p no:cacheprovider -n "${TRIAGE_TEST_WORKERS:-2}" \
  --dist loadfile "$@"

#!/usr/bin/env bash
# Set up (scripts/bootstrap.sh), build the bundled benign demo evidence, import its demo
# hash sets into a demo store, scan it, and print the summary and the case database path.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/triage demo --dir "${1:-demo}"

#!/usr/bin/env bash
# README set-up command 2: install what is needed and run the whole test suite (as root: the
# integration tests build real labs; without root they are skipped and say so).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"

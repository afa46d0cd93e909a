#!/usr/bin/env bash
# README set-up command 2: install what is needed and run the whole test suite (as root: the
# integration tests build real labs; without root they are skipped and say so).
set -euo pipefail
cd "$(dirname "$0")/.."
# the page tests open netlab's HTML in Debian's Chromium (the "pages" group of programs.txt)
NETLAB_EXTRAS="${NETLAB_EXTRAS:+$NETLAB_EXTRAS,}pages" scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"

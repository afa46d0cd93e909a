#!/usr/bin/env bash
# README set-up command 1: install what is needed, bring up bridge3, show traffic crossing it.
# The lab stays up afterwards: look around with `netlab status`, remove it with `netlab down bridge3`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/netlab down --missing-ok bridge3 >/dev/null   # re-runnable: replace the demo lab of an earlier run
.venv/bin/netlab up bridge3
.venv/bin/netlab exec bridge3 ns-calm1 -- ping -c 3 -i 0.2 198.51.100.2

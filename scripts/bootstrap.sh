#!/usr/bin/env bash
# Install everything netlab needs on a fresh Debian 12 machine (or the workshop VM), idempotently.
#
# Why one script: the README, CI (.ci/run) and the Vagrantfile all provision through it, so there
# is exactly one install path to keep working. Re-running it is cheap: apt skips what is present
# and pip finds the venv satisfied.
#
#   scripts/bootstrap.sh            system packages + venv at .venv with netlab and its dev tools
#   NETLAB_NO_APT=1 scripts/bootstrap.sh   skip apt (packages already present)
#   NETLAB_EXTRAS=bench scripts/bootstrap.sh  also install the benchmark peers (mininet)
#   NETLAB_EXTRAS=workshop scripts/bootstrap.sh  also install vagrant (to validate the Vagrantfile)
#   NETLAB_LIST_PACKAGES=1 scripts/bootstrap.sh  print the Debian packages it would install, and stop
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${NETLAB_VENV:-$here/.venv}

# The Debian packages come from the one list of programs netlab runs (src/netlab/programs.txt,
# which tests/unit/test_programs.py checks against the code): its "core" group always, the
# others when asked for.
programs="$here/src/netlab/programs.txt"
packages_of() {  # the packages of one group, once each
  awk -v g="$1" '!/^#/ && NF >= 3 && $3 == g && !seen[$2]++ { print $2 }' "$programs"
}
groups=(core)
IFS=, read -r -a extras <<< "${NETLAB_EXTRAS:-}"
groups+=("${extras[@]}")

want=()
for g in "${groups[@]}"; do
  [[ -n "$g" ]] || continue
  mapfile -t group < <(packages_of "$g")
  if [[ ${#group[@]} -eq 0 ]]; then echo "bootstrap: no package group '$g' in $programs" >&2; exit 1; fi
  want+=("${group[@]}")
done
if [[ -n "${NETLAB_LIST_PACKAGES:-}" ]]; then printf '%s\n' "${want[@]}"; exit 0; fi  # for the tests

need_apt=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$p")
done

if [[ ${#need_apt[@]} -gt 0 && -z "${NETLAB_NO_APT:-}" ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: installing ${need_apt[*]} needs root (run with sudo)" >&2
    exit 1
  fi
  echo "bootstrap: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Debian 12 ships iptables with the nf_tables backend as the default alternative; make sure
# we never end up on the legacy backend, which this kernel lacks.
if command -v update-alternatives >/dev/null && [[ -e /usr/sbin/iptables-nft ]]; then
  update-alternatives --quiet --set iptables /usr/sbin/iptables-nft 2>/dev/null || true
fi

py=${PYTHON:-python3}
if [[ ! -x "$venv/bin/python" ]]; then
  echo "bootstrap: creating venv $venv"
  "$py" -m venv "$venv"
fi
stamp="$venv/.netlab-installed"
if [[ ! -f "$stamp" || "$here/pyproject.toml" -nt "$stamp" ]]; then
  echo "bootstrap: pip install -e .[dev,vm]"
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q -e "$here[dev,vm]"
  touch "$stamp"
fi
# netlab's own bytecode, as an installed package has it (an editable install has none, and with
# PYTHONDONTWRITEBYTECODE set every command would compile the modules again); quick when current
PYTHONDONTWRITEBYTECODE= "$venv/bin/python" -m compileall -q "$here/src/netlab" >/dev/null || true

# the tracefs tracer's native walker, built once per source version into /var/cache/netlab (root's,
# as the tracer is); a tracer that finds it missing builds it itself, or decodes in Python
if [[ $(id -u) -eq 0 ]]; then
  "$venv/bin/python" -c 'from netlab.tracers.decode import native; native.build()' \
    || echo "bootstrap: the native trace walker was not built; tracefs decodes in Python" >&2
fi

# tracefs is where the default tracer lives; mount it if the machine did not.
if [[ $(id -u) -eq 0 && -d /sys/kernel/tracing && -z "$(ls -A /sys/kernel/tracing 2>/dev/null)" ]]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
echo "bootstrap: ready ($venv/bin/netlab)"

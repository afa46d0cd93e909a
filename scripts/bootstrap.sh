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
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${NETLAB_VENV:-$here/.venv}

# Packages the lab engine, traffic and tracers call at run time. Each is probed by netlab at
# run time too, so a missing one gives a clear message rather than a crash.
apt_packages=(
  iproute2 iptables nftables procps util-linux
  tcpdump iputils-ping ethtool
  bpftrace linux-perf trace-cmd dropwatch
  graphviz
  # the tracefs tracer's native walker (src/netlab/tracers/native/ringwalk.c); without them it
  # decodes in Python, several times slower on a flood
  gcc libc6-dev
  # the kernel matrix: QEMU for the VMs, apt/dpkg/depmod to fetch and unpack Debian's kernels
  qemu-system-x86 kmod debian-archive-keyring
)
bench_packages=(mininet bridge-utils)
workshop_packages=(vagrant)   # only to `vagrant validate` the Vagrantfile; not needed inside the VM

need_apt=()
want=("${apt_packages[@]}")
if [[ ",${NETLAB_EXTRAS:-}," == *",bench,"* ]]; then want+=("${bench_packages[@]}"); fi
if [[ ",${NETLAB_EXTRAS:-}," == *",workshop,"* ]]; then want+=("${workshop_packages[@]}"); fi
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
  "$venv/bin/python" -c 'from netlab.tracers import native; native.build()' \
    || echo "bootstrap: the native trace walker was not built; tracefs decodes in Python" >&2
fi

# tracefs is where the default tracer lives; mount it if the machine did not.
if [[ $(id -u) -eq 0 && -d /sys/kernel/tracing && -z "$(ls -A /sys/kernel/tracing 2>/dev/null)" ]]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
echo "bootstrap: ready ($venv/bin/netlab)"

#!/usr/bin/env bash
# Boot the workshop box for real with Vagrant's libvirt provider and walk the workshop in it.
#
#   scripts/workshop-vm-test.sh BOX [--no-labs]      as root; NETLAB_EXTRAS=workshop scripts/bootstrap.sh first
#
# In the VM, over `vagrant ssh`: `netlab doctor`, `netlab up bridge3`, lab 02's check failing
# with the attendee's FORWARD rule removed (and naming the chain's DROP policy on node host),
# the fix from the lab's own text, the check passing; then every lab's walkthrough test
# (tests/integration/test_labs.py) unless --no-labs. The VM has no route out all the while.
#
# Why a network namespace of its own: libvirt's daemon, its network, bridge, dnsmasq, firewall
# rules and the QEMU domain all live in one (netlab-wsvm), with libvirt's configuration and state
# and Vagrant's home bound from a directory of this run, in the mount namespace `ip netns exec`
# makes. Removing the namespace's processes (by PID: `ip netns pids`) and the namespace leaves the
# host as found, and a run killed with SIGKILL is cleaned up by the next one.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ns=netlab-wsvm
state=/var/tmp/netlab-wsvm

# Every process in the namespace (libvirtd, dnsmasq, QEMU, vagrant's ssh) was started by a run of
# this script: end those by PID, then the namespace, then the run's directory.
teardown() {
  if ip netns list | grep -qx "$ns\( .*\)\?"; then
    local pids
    for sig in TERM KILL; do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [[ -z "$pids" ]] && break
      # shellcheck disable=SC2086
      kill -s "$sig" $pids 2>/dev/null || true
      for _ in $(seq 50); do [[ -z "$(ip netns pids "$ns" 2>/dev/null)" ]] && break; sleep 0.1; done
    done
    ip netns delete "$ns" 2>/dev/null || true
  fi
  rm -rf "$state"
}

inner() {  # in the namespace, in the mount namespace of `ip netns exec`
  local box=$1 labs=$2
  # libvirt's configuration (a copy, with QEMU run as root, no AppArmor, logs to files: no
  # virtlogd) and its state, all in this run's directory
  for d in etc lib cache log; do mkdir -p "$state/libvirt-$d"; done
  cp -a /etc/libvirt/. "$state/libvirt-etc/"
  cat >>"$state/libvirt-etc/qemu.conf" <<'EOF'
user = "root"
group = "root"
security_driver = "none"
stdio_handler = "file"
EOF
  mount --bind "$state/libvirt-etc" /etc/libvirt
  # a /run of its own: the host may have no /run/libvirt, and none must appear there
  mount -t tmpfs -o mode=0755 netlab-wsvm /run
  mkdir -p /run/libvirt /run/lock
  mount --bind "$state/libvirt-lib" /var/lib/libvirt
  mount --bind "$state/libvirt-cache" /var/cache/libvirt
  mount --bind "$state/libvirt-log" /var/log/libvirt
  mkdir -p /var/lib/libvirt/images /var/lib/libvirt/qemu /var/lib/libvirt/dnsmasq
  ip link set lo up

  libvirtd --pid-file "$state/libvirtd.pid" >"$state/libvirtd.log" 2>&1 &
  for _ in $(seq 100); do [[ -S /run/libvirt/libvirt-sock ]] && break; sleep 0.1; done
  [[ -S /run/libvirt/libvirt-sock ]] || { echo "workshop-vm-test: libvirtd did not start:"; cat "$state/libvirtd.log"; return 1; }
  virsh -q pool-define-as default dir --target /var/lib/libvirt/images >/dev/null
  virsh -q pool-start default >/dev/null

  export VAGRANT_HOME=$state/vagrant.d VAGRANT_DOTFILE_PATH=$state/dotvagrant VAGRANT_CWD=$here
  export NETLAB_VAGRANT_DRIVER=qemu NETLAB_VAGRANT_ISOLATED=1 NETLAB_VAGRANT_CONSOLE=$state/console.log
  export VAGRANT_DEFAULT_PROVIDER=libvirt VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_PARALLEL=1
  local t0=$SECONDS
  step "vagrant box add netlab/workshop"
  vagrant box add --name netlab/workshop "$box" >/dev/null
  step "vagrant up --provider=libvirt (QEMU without KVM)"
  local up0=$SECONDS
  # the box upload's progress is a line of carriage returns per percent
  if ! vagrant up --provider=libvirt --no-provision 2>&1 | stdbuf -oL tr '\r' '\n' | grep --line-buffered -v 'Progress:'; then
    echo "--- the VM's console"; tail -40 "$state/console.log" 2>/dev/null || true
    return 1
  fi
  local up=$((SECONDS - up0))
  vssh() { vagrant ssh -c "$1" -- -q; }
  local booted
  booted=$(vssh 'cut -d" " -f1 /proc/uptime')
  step "vagrant provision (the prebuilt box: this checkout's netlab and labs, offline)"
  local p0=$SECONDS
  vagrant provision
  local provision=$((SECONDS - p0))

  step "no route out of the VM (a room without internet)"
  if vssh 'ip -4 route show default; ip -6 route show default' | grep -q .; then
    echo "workshop-vm-test: the VM has a default route"; return 1
  fi
  step "sudo netlab doctor"
  vssh 'uname -r; sudo netlab doctor' | tee "$state/doctor.txt"
  grep -q '^6\.1\.' "$state/doctor.txt" || { echo "workshop-vm-test: the VM does not run Debian's 6.1"; return 1; }
  step "sudo netlab up bridge3"
  vssh 'sudo netlab up bridge3 && sudo netlab exec bridge3 ns-calm1 -- ping -c 2 -i 0.2 -W 2 198.51.100.2'
  step "lab 02: the attendee removes the FORWARD rule; the check fails and says where the pings died"
  vssh 'sudo netlab exec bridge3 host -- iptables -D FORWARD -i calmbr -j ACCEPT'
  if vssh 'cd ~/labs && sudo netlab check 02-bridge-forward-rule' >"$state/check-failing.txt" 2>&1; then
    cat "$state/check-failing.txt"; echo "workshop-vm-test: lab 02's check passed with the rule removed"; return 1
  fi
  cat "$state/check-failing.txt"
  grep -q 'died: node host, device calmveth1_peer, in nft_do_chain' "$state/check-failing.txt" \
    && grep -q 'dropped by filter/FORWARD policy DROP' "$state/check-failing.txt" \
    || { echo "workshop-vm-test: the failing check does not name the FORWARD chain's policy on node host"; return 1; }
  step "lab 02: the fix from the lab's text; the check passes"
  vssh 'sudo netlab exec bridge3 host -- iptables -A FORWARD -i calmbr -j ACCEPT'
  vssh 'cd ~/labs && sudo netlab check 02-bridge-forward-rule'
  vssh 'sudo netlab down bridge3'
  local labs_s=0
  if [[ "$labs" == yes ]]; then
    step "every lab's walkthrough test, inside the VM"
    local l0=$SECONDS
    vssh 'cd /vagrant && sudo /opt/netlab-venv/bin/python -m pytest -p no:cacheprovider -q tests/integration/test_labs.py'
    labs_s=$((SECONDS - l0))
  fi
  step "vagrant destroy -f"
  vagrant destroy -f >/dev/null
  echo "workshop-vm-test: passed; vagrant up ${up} s (box upload, boot, rsync; SSH answered ${booted%.*} s after" \
    "the kernel started), provision ${provision} s, labs ${labs_s} s, in all $((SECONDS - t0)) s"
}

step() { echo "== workshop-vm-test: $*"; }

case "${1:-}" in
  --inner) shift; inner "$@"; exit ;;
  ""|-h|--help) sed -n '2,9p' "$0"; exit 2 ;;
esac
box=$(realpath "$1")
labs=yes
[[ "${2:-}" == --no-labs ]] && labs=no
[[ $(id -u) -eq 0 ]] || { echo "workshop-vm-test: needs root (libvirt's daemon in a network namespace)" >&2; exit 3; }
[[ -f "$box" ]] || { echo "workshop-vm-test: no box at $box (scripts/workshop-box.sh $1 builds it)" >&2; exit 2; }
for tool in vagrant libvirtd virsh dnsmasq; do
  command -v "$tool" >/dev/null || { echo "workshop-vm-test: $tool is missing (NETLAB_EXTRAS=workshop scripts/bootstrap.sh)" >&2; exit 4; }
done

exec 9<"$0"  # the script itself: a lock that leaves no file behind
flock -n 9 || { echo "workshop-vm-test: another run is under way" >&2; exit 5; }
teardown  # what a killed run left
trap teardown EXIT
trap 'exit 130' INT TERM
mkdir -p "$state"
# Vagrant writes its home (keys, an index) wherever it runs: this run's, never ~/.vagrant.d
VAGRANT_HOME=$state/vagrant.d vagrant plugin list 2>/dev/null | grep -q vagrant-libvirt \
  || { echo "workshop-vm-test: vagrant-libvirt is missing (NETLAB_EXTRAS=workshop scripts/bootstrap.sh)" >&2; exit 4; }
ip netns add "$ns"
# in the background, so that a signal reaches the traps now rather than when the run ends
ip netns exec "$ns" "$here/scripts/workshop-vm-test.sh" --inner "$box" "$labs" &
wait $!

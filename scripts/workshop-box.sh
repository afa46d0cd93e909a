#!/usr/bin/env bash
# Build the workshop VM as a Vagrant box (libvirt provider) from Debian 12 packages only.
#
#   scripts/workshop-box.sh OUT.box          as root; NETLAB_EXTRAS=workshop scripts/bootstrap.sh first
#   NETLAB_BOX_QEMU=1 scripts/workshop-box.sh OUT.box   also the kernel matrix's QEMU inside the box
#   scripts/workshop-box.sh --key            print the cache key of what the box is made from
#
# Why a box of our own: a room of 30 laptops on conference Wi-Fi cannot each download a catalogue
# box and then everything bootstrap installs. This box is built once, copied on USB sticks and
# boots with no network at all: Debian's stock 6.1 kernel, systemd, openssh-server, sudo, the
# `vagrant` user with Vagrant's insecure key (what the box format expects; `vagrant up` replaces
# it), netlab in /opt/netlab-venv, every Debian package of src/netlab/programs.txt's core group,
# the labs in /home/vagrant/labs and tracefs mounted at boot.
#
# Nothing is downloaded but Debian's packages (mmdebstrap) and PyPI's (pip, inside the image,
# through scripts/bootstrap.sh: the one install path). The disk is a partitioned raw image on a
# loop device, booted by GRUB, converted to a compressed qcow2 and packed with Vagrant's
# metadata.json.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
disk_size=${NETLAB_BOX_DISK:-20G}
suite=bookworm

# What the box is made from, beside the packages a mirror serves that day: this script, the
# package list, the Python dependencies and bootstrap, which installs them. The netlab code and the labs are refreshed from the
# checkout at provisioning (offline), so a change to them needs no new box.
box_key() {
  cat "$here/scripts/workshop-box.sh" "$here/src/netlab/programs.txt" "$here/pyproject.toml" \
    "$here/scripts/bootstrap.sh" | sha256sum | cut -c1-16
}

# The Debian packages inside: bootstrap's core list (the matrix's QEMU only when asked), and
# what a bootable Vagrant box needs.
box_packages() {
  NETLAB_LIST_PACKAGES=1 "$here/scripts/bootstrap.sh" | { [[ -n "${NETLAB_BOX_QEMU:-}" ]] && cat || grep -vx 'qemu-system-x86'; }
  printf '%s\n' linux-image-amd64 grub-pc systemd-sysv udev dbus openssh-server sudo \
    python3 python3-venv ca-certificates rsync less nano vim-tiny bash-completion iputils-ping
}

# Runs on the build host with the image's root as $1, after mmdebstrap installed the packages.
customize() {
  local root=$1 pubkey
  echo "workshop-box: configuring the system"
  echo netlab >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tnetlab\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
  # tracefs at boot: the default tracer reads it, and `netlab doctor` says so when it is missing
  printf 'LABEL=netlab-root\t/\text4\terrors=remount-ro\t0 1\ntracefs\t/sys/kernel/tracing\ttracefs\tdefaults\t0 0\n' \
    >"$root/etc/fstab"
  # the first NIC (Vagrant's management network) by DHCP; systemd-networkd is in systemd
  mkdir -p "$root/etc/systemd/network"
  printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n' >"$root/etc/systemd/network/50-dhcp.network"
  chroot "$root" systemctl enable systemd-networkd.service ssh.service >/dev/null 2>&1
  # a box shared by a room must not share SSH host keys: each VM makes its own at first boot
  rm -f "$root"/etc/ssh/ssh_host_*
  mkdir -p "$root/etc/systemd/system/ssh.service.d"
  printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    >"$root/etc/systemd/system/ssh.service.d/hostkeys.conf"
  # nothing in a workshop VM should wake up and fetch package lists
  chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true

  echo "workshop-box: the vagrant user"
  chroot "$root" useradd --create-home --shell /bin/bash --groups sudo vagrant
  echo 'vagrant:vagrant' | chroot "$root" chpasswd
  printf 'vagrant ALL=(ALL) NOPASSWD: ALL\nDefaults:vagrant !requiretty\nDefaults secure_path="/opt/netlab-venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n' \
    >"$root/etc/sudoers.d/vagrant"
  chmod 0440 "$root/etc/sudoers.d/vagrant"
  pubkey=$(vagrant_public_key)
  install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
  echo "$pubkey" >"$root/home/vagrant/.ssh/authorized_keys"
  chmod 0600 "$root/home/vagrant/.ssh/authorized_keys"
  chroot "$root" chown -R vagrant:vagrant /home/vagrant/.ssh

  echo "workshop-box: netlab (scripts/bootstrap.sh inside the image, packages already present)"
  mkdir -p "$root/opt/netlab"
  copy_checkout "$root/opt/netlab"
  # pip inside the image reaches PyPI as this machine's pip does: the same index and the same
  # certificate authorities (a proxy's own, where there is one), for the build only
  local ca=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || echo /etc/ssl/certs/ca-certificates.crt)}
  cp "$ca" "$root/tmp/netlab-build-ca.pem"
  local pipenv=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
    PIP_CERT=/tmp/netlab-build-ca.pem PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180)
  [[ -n "${PIP_INDEX_URL:-}" ]] && pipenv+=("PIP_INDEX_URL=$PIP_INDEX_URL")
  chroot "$root" "${pipenv[@]}" NETLAB_NO_APT=1 NETLAB_VENV=/opt/netlab-venv /opt/netlab/scripts/bootstrap.sh
  # the backend an offline re-install from /vagrant needs (pip --no-build-isolation --no-index)
  chroot "$root" "${pipenv[@]}" /opt/netlab-venv/bin/python -m pip install -q hatchling editables
  rm -f "$root/tmp/netlab-build-ca.pem"
  # bootstrap mounts tracefs where it finds none, as on a machine: here that is the build's /sys
  if mountpoint -q "$root/sys/kernel/tracing"; then umount "$root/sys/kernel/tracing"; fi
  ln -sf /opt/netlab-venv/bin/netlab "$root/usr/local/bin/netlab"
  cp -r "$here/labs" "$root/home/vagrant/labs"
  chroot "$root" chown -R vagrant:vagrant /home/vagrant/labs
  # what the box was made from; its presence tells the Vagrantfile's provisioner this is the box
  box_key >"$root/etc/netlab-box"

  echo "workshop-box: boot loader"
  sed -i -e 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=0/' \
    -e 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT="console=tty0 console=ttyS0,115200"/' \
    "$root/etc/default/grub"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/root/.cache
}

vagrant_public_key() {
  local gem
  gem=$(ruby -e 'print Gem::Specification.find_by_name("vagrant").gem_dir' 2>/dev/null || true)
  for f in "$gem/keys/vagrant.pub" /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub; do
    [[ -f "$f" ]] && { cat "$f"; return; }
  done
  echo "workshop-box: Vagrant's insecure public key not found (NETLAB_EXTRAS=workshop scripts/bootstrap.sh installs vagrant)" >&2
  return 1
}

# the checkout's files (tracked and new, not ignored), without a venv or caches of this machine
copy_checkout() {
  if git -C "$here" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$here" ls-files -z --cached --others --exclude-standard \
      | (cd "$here" && rsync -a --from0 --files-from=- ./ "$1/")
  else
    rsync -a --exclude .venv --exclude .git "$here/" "$1/"
  fi
}

case "${1:-}" in
  --key) box_key; exit 0 ;;
  --customize) customize "$2"; exit 0 ;;
  ""|-h|--help) sed -n '2,7p' "$0"; exit 2 ;;
esac
out=$(realpath -m "$1")
[[ -d "$(dirname "$out")" ]] || { echo "workshop-box: no directory $(dirname "$out") for $1" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "workshop-box: needs root (loop devices, chroot)" >&2; exit 3; }
for tool in mmdebstrap qemu-img sfdisk losetup mkfs.ext4 rsync; do
  command -v "$tool" >/dev/null || { echo "workshop-box: $tool is missing (NETLAB_EXTRAS=workshop scripts/bootstrap.sh)" >&2; exit 4; }
done
vagrant_public_key >/dev/null

start=$SECONDS
work=$(mktemp -d /var/tmp/netlab-box.XXXXXX)
loop=""
cleanup() {
  set +e
  mountpoint -q "$work/root" && umount -R "$work/root"
  [[ -n "$loop" ]] && losetup -d "$loop"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

truncate -s "$disk_size" "$work/disk.raw"
echo 'label: dos
start=2048, type=83, bootable' | sfdisk -q "$work/disk.raw"
loop=$(losetup --find --show --partscan "$work/disk.raw")
# without udev (a container, a minimal VM) the kernel knows the partition but /dev has no node
part=/sys/block/${loop#/dev/}/${loop#/dev/}p1/dev
[[ -e "$part" ]] || partx --add "$loop"
[[ -b "${loop}p1" ]] || mknod "${loop}p1" b "$(cut -d: -f1 "$part")" "$(cut -d: -f2 "$part")"
mkfs.ext4 -q -L netlab-root "${loop}p1"
mkdir "$work/root"
mount "${loop}p1" "$work/root"

mapfile -t packages < <(box_packages | sort -u)
echo "workshop-box: mmdebstrap $suite with ${#packages[@]} packages"
mmdebstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
  --customize-hook="\"$here/scripts/workshop-box.sh\" --customize \"\$1\"" \
  "$suite" "$work/root"

echo "workshop-box: grub on the disk"
for m in dev dev/pts proc sys; do mount --bind "/$m" "$work/root/$m"; done
chroot "$work/root" grub-install --target=i386-pc --modules="part_msdos ext2" "$loop" 2>&1 | grep -v '^Installation finished' || true
chroot "$work/root" update-grub 2>/dev/null
# the build host's loop device means nothing in the VM: should GRUB have named it, boot by label
sed -i -E "/^\s*linux\s/ s|root=/dev/loop[^ ]*|root=LABEL=netlab-root|" "$work/root/boot/grub/grub.cfg"
umount -R "$work/root"
losetup -d "$loop"; loop=""

echo "workshop-box: qcow2 and box"
mkdir "$work/box"
qemu-img convert -c -O qcow2 "$work/disk.raw" "$work/box/box.img"
virtual_gb=$(( $(qemu-img info --output=json "$work/box/box.img" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])') / 1024**3 ))
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$virtual_gb" >"$work/box/metadata.json"
# the project's Vagrantfile sets memory, CPUs and the accelerator; the box adds nothing
echo 'Vagrant.configure("2") { |config| }' >"$work/box/Vagrantfile"
tar -C "$work/box" -cf "$out.partial" metadata.json Vagrantfile box.img
mv "$out.partial" "$out"
echo "workshop-box: $out ($(du -h "$out" | cut -f1), $((SECONDS - start)) s)"

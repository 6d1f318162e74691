#!/bin/bash
# Prepare a Debian 12 host for the real-kernel harness. Idempotent: a warm cache makes this a few stat()s.
#
#   setup-host.sh CACHE_DIR KERNEL_SUITE [libvirt]     (KERNEL_SUITE: bookworm | bookworm-backports)
#
# Prints, on stdout and nothing else, the directory of the extracted kernel (KDIR). Progress goes to stderr.
#
# What it needs and why:
#   busybox-static  the guest's whole userland (/init is a busybox sh script); static, so it needs no libc in
#                   the initramfs
#   kmod            depmod: the kernel .deb ships no modules.dep, and the initramfs builder reads it
#   cpio, xz-utils, zstd   pack the initramfs; the backports kernel's modules are .ko.xz and busybox insmod
#                   loads only uncompressed ones
#   dbus-daemon     stage 3's private bus; the guest runs the host's, from the shared /usr
#   QEMU >= 8.0     the 82576 'igb' model (the SR-IOV PF we test against) appeared in QEMU 8.0; bookworm has
#                   7.2, so it comes from bookworm-backports (QEMU 10)
#   libvirt 11      only with 'libvirt' (stage 4): libvirtd and virsh, which the guest runs from the shared /usr,
#                   from bookworm-backports like QEMU 10 (libvirt >= 8.2 for <qemu:override>); systemd-container,
#                   which it pulls in, is pinned to the installed systemd's version so systemd is not upgraded
#   a Debian kernel downloaded with apt-get download and unpacked with dpkg -x: never installed, so the host's
#                   boot configuration is not touched
set -euo pipefail
CACHE=$1
SUITE=$2
WITH_LIBVIRT=${3:-}
export DEBIAN_FRONTEND=noninteractive
say() { echo "setup: $*" >&2; }

case $SUITE in
  bookworm | bookworm-backports) ;;
  *) say "unknown kernel suite '$SUITE' (expected bookworm or bookworm-backports)"; exit 1 ;;
esac
mkdir -p "$CACHE/debs"
KDIR=$CACHE/kernel-$SUITE
# The marker is written last, so an interrupted extraction is redone rather than half-used.
KERNEL_READY=$KDIR/.complete

missing_tools=()
# busybox-static specifically: the plain 'busybox' package is dynamically linked, useless in the initramfs.
dpkg-query -W -f='${Status}' busybox-static 2> /dev/null | grep -q 'ok installed' || missing_tools+=(busybox-static)
for t in depmod:kmod cpio:cpio xz:xz-utils zstd:zstd dbus-daemon:dbus-daemon; do
  command -v "${t%%:*}" > /dev/null || missing_tools+=("${t#*:}")
done
need_qemu=0
if ! command -v qemu-system-x86_64 > /dev/null || ! qemu-system-x86_64 -device help 2> /dev/null | grep -q '"igb"'; then
  need_qemu=1
fi
need_kernel=0
[ -f "$KERNEL_READY" ] || need_kernel=1
need_libvirt=0
if [ "$WITH_LIBVIRT" = libvirt ] && ! { [ -x /usr/sbin/libvirtd ] && [ -x /usr/bin/virsh ] &&
  dpkg-query -W -f='${Status}' libvirt-daemon-driver-qemu 2> /dev/null | grep -q 'ok installed'; }; then
  need_libvirt=1
fi

if [ ${#missing_tools[@]} = 0 ] && [ $need_qemu = 0 ] && [ $need_kernel = 0 ] && [ $need_libvirt = 0 ]; then
  echo "$KDIR"
  exit 0
fi

# ---- apt: backports only for as long as we need it --------------------------------------------------------
BP=/etc/apt/sources.list.d/vfbroker-kernel-test-backports
need_backports=0
{ [ $need_qemu = 1 ] || [ $need_libvirt = 1 ] || { [ $need_kernel = 1 ] && [ "$SUITE" = bookworm-backports ]; }; } && need_backports=1

# Derive a bookworm-backports entry from the machine's own bookworm entry, so the mirror (and any snapshot
# pinning or Signed-By) is whatever this machine already trusts. Only the stanza/line for the plain
# 'bookworm' suite is used: rewriting every stanza would also point the security archive at a suite it
# does not carry.
add_backports() {
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    awk 'BEGIN { RS = ""; ORS = "\n\n" } /(^|\n)Suites:([^\n]* )?bookworm( |\n|$)/ { print; exit }' \
      /etc/apt/sources.list.d/debian.sources |
      sed 's/^Suites:.*/Suites: bookworm-backports/' > "$BP.sources"
    [ -s "$BP.sources" ] || { say "no 'bookworm' stanza in /etc/apt/sources.list.d/debian.sources"; rm -f "$BP.sources"; exit 1; }
  elif [ -f /etc/apt/sources.list ]; then
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i == "bookworm") { $i = "bookworm-backports"; print; exit } }' \
      /etc/apt/sources.list > "$BP.list"
    [ -s "$BP.list" ] || { say "no 'deb … bookworm …' line in /etc/apt/sources.list"; rm -f "$BP.list"; exit 1; }
  else
    say "no apt sources found to derive bookworm-backports from"
    exit 1
  fi
}
remove_backports() { rm -f "$BP.sources" "$BP.list"; }

if [ $need_backports = 1 ]; then
  say "adding bookworm-backports (derived from this machine's apt sources) for the duration of the setup"
  add_backports
  trap 'remove_backports; apt-get update -qq >&2 || true' EXIT
fi
say "apt-get update"
apt-get update -qq >&2
if [ ${#missing_tools[@]} != 0 ]; then
  say "installing ${missing_tools[*]}"
  # --no-upgrade: this is a test harness, it must not upgrade anything else on the machine.
  apt-get install -y -qq --no-install-recommends --no-upgrade "${missing_tools[@]}" > /dev/null
fi
if [ $need_qemu = 1 ]; then
  say "installing qemu-system-x86 from bookworm-backports (QEMU >= 8.0 for the igb SR-IOV model)"
  apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 > /dev/null
  qemu-system-x86_64 -device help | grep -q '"igb"' || { say "the installed QEMU has no igb device"; exit 1; }
fi
if [ $need_libvirt = 1 ]; then
  say "installing libvirt from bookworm-backports (libvirtd and virsh for stage 4)"
  apt-get install -y -qq --no-install-recommends -t bookworm-backports libvirt-daemon libvirt-daemon-driver-qemu \
    libvirt-clients "systemd-container=$(dpkg-query -W -f='${Version}' systemd)" > /dev/null
fi

if [ $need_kernel = 1 ]; then
  tflag=()
  [ "$SUITE" = bookworm-backports ] && tflag=(-t bookworm-backports)
  # linux-image-amd64 is a metapackage; the image package's name carries the ABI and changes over time.
  IMG=$(apt-cache depends "${tflag[@]}" linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
  [ -n "$IMG" ] || { say "cannot resolve linux-image-amd64 in $SUITE"; exit 1; }
  if ! ls "$CACHE/debs/${IMG}"_*.deb > /dev/null 2>&1; then
    say "downloading $IMG ($SUITE)"
    # apt-get download as root warns that the download is unsandboxed (_apt cannot write here); harmless.
    (cd "$CACHE/debs" && apt-get download -qq "${tflag[@]}" "$IMG" 2>&1 | grep -v 'unsandboxed' >&2 || true)
    ls "$CACHE/debs/${IMG}"_*.deb > /dev/null 2>&1 || { say "download of $IMG failed"; exit 1; }
  fi
  say "extracting $IMG into $KDIR"
  rm -rf "$KDIR"
  dpkg -x "$CACHE/debs/${IMG}"_*.deb "$KDIR"
  KVER=${IMG#linux-image-}
  # The .deb ships no modules.dep (the postinst runs depmod on a real install).
  depmod -b "$KDIR" "$KVER"
  for opt in CONFIG_VFIO_PCI=m CONFIG_PCI_IOV=y CONFIG_INTEL_IOMMU=y; do
    grep -q "^$opt" "$KDIR/boot/config-$KVER" || { say "$IMG lacks $opt"; exit 1; }
  done
  touch "$KERNEL_READY"
fi
echo "$KDIR"

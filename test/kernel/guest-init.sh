#!/bin/busybox sh
# /init of the test guest (busybox sh). Everything it reports for the host starts with "@@VFB ", which
# run.sh parses out of the serial console; anything else on the console is context for a human.
#
# Kernel command-line words KEY=VALUE (no dot in KEY) arrive here as environment variables:
#   VFB_PROJECT  the project directory, shared read-only by the host as 9p tag "vfbroker"; mounted at
#                the same path so every absolute path the code computes is the host's
#   VFB_BUILD    the compiled tree inside it (dist/ by default) holding test/kernel/stage*.js
#   VFB_STAGES   which stages to run, e.g. 123
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# What udev makes on a host; virsh define reads a definition from /dev/stdin (vfbroker guest attach/sync).
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
up() { cut -d' ' -f1 /proc/uptime; }
mark() { echo "@@VFB $*"; }
# run.sh's boot watchdog waits for this line.
mark "BOOTED uptime=$(up) kernel=$(uname -r)"

fail_boot() {
  mark "BOOT-FAILED $*"
  poweroff -f
}

M=/lib/modules/$(uname -r)
while read -r m; do
  case $m in
    # enable_sriov: without it vfio-pci refuses sriov_numvfs on its PFs (ENOENT).
    */vfio-pci.ko) insmod "$M/$m" enable_sriov=1 ;;
    *) insmod "$M/$m" ;;
  esac || fail_boot "insmod $m"
done < /modules.load

# The host's /usr carries node and the libraries it links (Debian is merged-/usr); the initramfs keeps
# its own /lib for the modules, so link the two directories the dynamic loader looks in.
O=trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose
mount -t 9p -o $O hostusr /usr || fail_boot "9p mount of the host's /usr"
ln -s /usr/lib64 /lib64
ln -s /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu
mkdir -p "$VFB_PROJECT"
mount -t 9p -o $O vfbroker "$VFB_PROJECT" || fail_boot "9p mount of the project"

# The emulated 82576 PF (QEMU's igb model).
PF=
for d in /sys/bus/pci/devices/*; do
  [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x8086:0x10c9 ] && PF=${d##*/}
done
[ -n "$PF" ] || fail_boot "no 82576 PF (8086:10c9) found"
P=/sys/bus/pci/devices/$PF
mark "ENV pf=$PF driver=$(basename "$(readlink $P/driver)") totalvfs=$(cat $P/sriov_totalvfs) node=$(node --version) uptime=$(up)"

# Stage 2 needs the PF on vfio-pci with two VFs, whatever stage 1 left behind. vfio-pci refuses a PF
# that still has VFs, so SR-IOV goes off first.
pf_on_vfio_pci() {
  [ "$(cat $P/sriov_numvfs)" = 0 ] || echo 0 > $P/sriov_numvfs
  [ -e $P/driver ] && echo "$PF" > $P/driver/unbind
  echo vfio-pci > $P/driver_override
  echo "$PF" > /sys/bus/pci/drivers_probe
  echo 2 > $P/sriov_numvfs
  mark "ENV pf=$PF driver=$(basename "$(readlink $P/driver)") totalvfs=$(cat $P/sriov_totalvfs) numvfs=$(cat $P/sriov_numvfs)"
}

run_stage() {
  n=$1
  shift
  t0=$(up)
  mark "STAGE $n BEGIN uptime=$t0"
  node --enable-source-maps "$@"
  rc=$?
  mark "STAGE $n EXIT rc=$rc seconds=$(awk "BEGIN { printf \"%.1f\", $(up) - $t0 }")"
}

case $VFB_STAGES in *1*)
  run_stage 1 "$VFB_BUILD/test/kernel/stage1-sysfs.js" "$PF"
  ;;
esac
case $VFB_STAGES in *2*)
  pf_on_vfio_pci
  run_stage 2 "$VFB_BUILD/test/kernel/stage2-pfholder.js" "$PF"
  ;;
esac
# The accounts stages 3 and 4 use: a consumer policy.yaml grants VF 1 by uid, and a stranger it grants
# nothing. The policy loader, dbus-daemon and libvirtd read these files (no other NSS). libvirtd looks
# up Debian's compiled-in QEMU user and group before it reads qemu.conf (which says root), so they exist.
case $VFB_STAGES in *[34]*)
  mkdir -p /etc /tmp
  printf '%s\n' root:x:0:0:root:/root:/bin/sh vfb-consumer:x:1001:1001::/:/bin/false \
    vfb-stranger:x:1002:1002::/:/bin/false libvirt-qemu:x:64055:107::/var/lib/libvirt:/bin/false > /etc/passwd
  printf '%s\n' root:x:0: vfb-consumer:x:1001: vfb-stranger:x:1002: kvm:x:107: libvirt-qemu:x:64055: \
    libvirt:x:106: > /etc/group
  printf '%s\n' 'passwd: files' 'group: files' > /etc/nsswitch.conf
  ;;
esac
case $VFB_STAGES in *3*)
  run_stage 3 "$VFB_BUILD/test/kernel/stage3-broker.js" "$PF"
  ;;
esac
case $VFB_STAGES in *4*)
  run_stage 4 "$VFB_BUILD/test/kernel/stage4-libvirt.js" "$PF"
  ;;
esac
# vfio-pci logs token refusals (rate-limited) and nothing reaches the console under 'quiet'.
dmesg | grep -iE 'vfio|token|iov' | sed 's/^/dmesg: /'
mark "DONE uptime=$(up)"
sync
poweroff -f

#!/bin/bash
# vfbroker's real-kernel harness: boot a Debian kernel under QEMU (software emulation, no KVM needed)
# with an emulated Intel IOMMU and an emulated SR-IOV PF (QEMU's 82576 'igb'), and run the project's
# own compiled code inside it against the kernel's vfio-pci. See README.md beside this file.
#
#   sudo test/kernel/run.sh [--keep] [--build-dir DIR] [--stages 1234]
#
#   --keep           keep the serial console log (it is always kept when something fails)
#   --build-dir DIR  the compiled tree to test, inside the project (default: dist, as `npm run build` makes it)
#   --stages LIST    which stages to run: 1 = sysfs case table, 2 = PF holder, 3 = the broker
#                    (vfbroker serve, D-Bus, CLI consumers), 4 = the full stack (libvirtd, the hook,
#                    an inner QEMU; needs libvirt, installed from bookworm-backports) (default 1234)
#
# Environment: VFB_KERNEL_CACHE (default /var/cache/vfbroker-kernel-test), VFB_KERNEL_SUITE (bookworm =
# Debian 12's own kernel, the default; bookworm-backports = its 6.12 backport), VFB_KERNEL_TIMEOUT
# (seconds for one boot, default 480).
#
# Exit status: 0 when every case of every requested stage passed; 1 otherwise (a failed case, a stage
# that did not finish, a boot that hung, a timeout, or a setup problem).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PROJECT=$(cd "$HERE/../.." && pwd)
CACHE=${VFB_KERNEL_CACHE:-/var/cache/vfbroker-kernel-test}
SUITE=${VFB_KERNEL_SUITE:-bookworm}
TIMEOUT=${VFB_KERNEL_TIMEOUT:-480}
BUILD=$PROJECT/dist
STAGES=1234
KEEP=0
# The rare early-boot hang under multi-threaded TCG (an RCU stall before /init runs, about 1 boot in
# 40 on the recipe's machine) is not a test failure: kill that boot and try again, twice at most.
BOOT_TIMEOUT=30
BOOT_RETRIES=2

die() {
  echo "kernel tests: $*" >&2
  exit 1
}
stage_script() {
  case $1 in 1) echo stage1-sysfs.js ;; 2) echo stage2-pfholder.js ;; 3) echo stage3-broker.js ;; 4) echo stage4-libvirt.js ;; esac
}
stage_name() {
  case $1 in
    1) echo "sysfs case table (RealSysfs on the real /sys)" ;;
    2) echo "PF holder against vfio-pci" ;;
    3) echo "the broker: vfbroker serve, D-Bus, CLI consumers, VFIO opens" ;;
    4) echo "the full stack: libvirtd, vfbroker's hook, guest attach/sync, an inner QEMU opening the VF" ;;
  esac
}
while [ $# -gt 0 ]; do
  case $1 in
    --keep) KEEP=1 ;;
    --build-dir) BUILD=${2:?--build-dir needs a directory}; shift ;;
    --stages) STAGES=${2:?--stages needs a list such as 123}; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

[ "$(id -u)" = 0 ] || die "must run as root: it installs packages with apt-get and keeps its cache in /var/cache (run: sudo $0)"
[[ $STAGES =~ ^[1234]+$ ]] || die "--stages takes digits 1 to 4, e.g. 123"
# Inside the guest the project is mounted at the same path, so the build directory must live in it.
BUILD=$(cd "$BUILD" 2> /dev/null && pwd) || die "build directory not found: run 'npm run build' first (or pass --build-dir)"
case $BUILD/ in "$PROJECT"/*) ;; *) die "the build directory $BUILD is not inside the project $PROJECT" ;; esac
for s in $(echo "$STAGES" | grep -o .); do
  js=$BUILD/test/kernel/$(stage_script "$s")
  [ -f "$js" ] || die "$js is missing: run 'npm run build' first (or pass --build-dir)"
done
# The kernel command line carries these paths to /init and cannot quote.
case "$PROJECT$BUILD" in *[[:space:]]*) die "the project path must not contain spaces" ;; esac
# The guest runs the host's node from the host's /usr, shared read-only.
NODE=$(readlink -f "$(command -v node)") || die "node not found"
case $NODE in /usr/*) ;; *) die "node must live under /usr (found $NODE): the guest mounts only the host's /usr" ;; esac

T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

WITH_LIBVIRT=
case $STAGES in *4*) WITH_LIBVIRT=libvirt ;; esac
KDIR=$("$HERE/setup-host.sh" "$CACHE" "$SUITE" $WITH_LIBVIRT) || die "host setup failed"
KVER=$(ls "$KDIR/lib/modules" | head -1)
INITRD=$("$HERE/build-initramfs.sh" "$KDIR" "$CACHE/initramfs") || die "building the initramfs failed"
echo "kernel tests: kernel $KVER, $(qemu-system-x86_64 --version | head -1), node $(node --version), build $BUILD"
echo "kernel tests: setup $(elapsed "$T0") s"

mkdir -p "$CACHE/logs"
LOG=$CACHE/logs/run-$(date +%Y%m%d-%H%M%S)-$$.log
QEMU=(qemu-system-x86_64
  -machine q35 -accel tcg,thread=multi -cpu max -smp 2 -m 1024
  -nographic -no-reboot -serial mon:stdio -nodefaults -display none
  # VFIO needs an IOMMU (Debian's kernel has no no-IOMMU mode), and vfio_iommu_type1 refuses an IOMMU
  # without interrupt remapping (VFIO_SET_IOMMU: EPERM).
  -device intel-iommu,intremap=on
  # The SR-IOV PF: 8 VFs at offset 0x80, stride 2 (00:14.0, 00:14.2, …), each in its own IOMMU group.
  -device igb,id=pf0,addr=04.0
  -virtfs "local,path=/usr,mount_tag=hostusr,security_model=none,readonly=on,multidevs=remap"
  -virtfs "local,path=$PROJECT,mount_tag=vfbroker,security_model=none,readonly=on,multidevs=remap"
  -kernel "$KDIR/boot/vmlinuz-$KVER" -initrd "$INITRD"
  -append "console=ttyS0 intel_iommu=on quiet panic=-1 VFB_PROJECT=$PROJECT VFB_BUILD=$BUILD VFB_STAGES=$STAGES")

T1=$(date +%s.%N)
attempt=0
while :; do
  attempt=$((attempt + 1))
  : > "$LOG.boot"
  timeout -k 5 "$TIMEOUT" "${QEMU[@]}" < /dev/null > "$LOG.boot" 2>&1 &
  qpid=$!
  hung=0
  started=$(date +%s)
  while kill -0 $qpid 2> /dev/null; do
    sleep 0.2
    if [ $hung = 0 ] && [ $(($(date +%s) - started)) -ge $BOOT_TIMEOUT ] && ! grep -q '@@VFB BOOTED' "$LOG.boot"; then
      hung=1
      echo "kernel tests: boot attempt $attempt hung before /init ran; killing it" | tee -a "$LOG.boot"
      kill $qpid
    fi
  done
  wait $qpid
  qrc=$?
  cat "$LOG.boot" >> "$LOG"
  rm -f "$LOG.boot"
  [ $hung = 1 ] && [ $attempt -le $BOOT_RETRIES ] && continue
  break
done

# ---- results: every '@@VFB' line the guest printed, without the serial console's carriage returns
results=$(tr -d '\r' < "$LOG" | grep -o '@@VFB .*' | cut -c7-)
echo "$results" | grep '^ENV ' | sed 's/^ENV /guest: /'
passed=0
failed=0
skipped=0
for s in $(echo "$STAGES" | grep -o .); do
  echo "stage $s: $(stage_name "$s")"
  cases=$(echo "$results" | grep "^CASE $s " | cut -d' ' -f3-)
  [ -n "$cases" ] && echo "$cases" | sed 's/^/  /'
  p=$(echo "$cases" | grep -c '^PASS ')
  f=$(echo "$cases" | grep -c '^FAIL ')
  k=$(echo "$cases" | grep -c '^SKIP ')
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + k))
  exit_line=$(echo "$results" | grep "^STAGE $s EXIT " | head -1)
  if ! echo "$results" | grep -q "^STAGE $s END "; then
    echo "  FAIL stage $s did not finish (${exit_line:-it never started}; see the log)"
    failed=$((failed + 1))
  fi
  [ -n "$exit_line" ] && echo "  took ${exit_line##*seconds=} s"
done
boot_failure=$(echo "$results" | grep '^BOOT-FAILED' | head -1)
[ -n "$boot_failure" ] && echo "guest setup failed: ${boot_failure#BOOT-FAILED }"
if ! echo "$results" | grep -q '^DONE'; then
  if [ $qrc = 124 ]; then why="QEMU timed out after $TIMEOUT s"; else why="QEMU exited with status $qrc before the guest finished"; fi
  [ $hung = 1 ] && why="the guest hung at boot $attempt times"
  echo "FAIL $why"
  failed=$((failed + 1))
fi
echo "boot attempts $attempt, QEMU $(elapsed "$T1") s, total $(elapsed "$T0") s"
echo "$passed passed, $failed failed$([ $skipped = 0 ] || echo " ($skipped skipped)")"
if [ $failed != 0 ] || [ $KEEP = 1 ]; then
  echo "serial log: $LOG"
else
  rm -f "$LOG"
fi
[ $failed = 0 ]

#!/bin/bash
# Build the guest's initramfs: static busybox, /init (guest-init.sh), and the kernel modules the stages
# need, uncompressed and listed in load order in /modules.load.
#
#   build-initramfs.sh KDIR OUT_DIR      prints the path of the (possibly cached) initramfs
#
# The result is cached under a name derived from everything that goes into it, so a warm run reuses it.
set -euo pipefail
KDIR=$1
OUT_DIR=$2
HERE=$(cd "$(dirname "$0")" && pwd)
KVER=$(ls "$KDIR/lib/modules" | head -1)
DEP=$KDIR/lib/modules/$KVER/modules.dep
BUSYBOX=/bin/busybox

# The modules /init loads. Their dependencies come from modules.dep. '?' marks a module that may be
# built in (virtio_pci is a module on 6.1 and built in on 6.12).
#   vfio-pci, vfio_iommu_type1   the driver under test and its IOMMU backend
#   virtio_pci, 9pnet_virtio, 9p the read-only shares carrying the host's /usr (node) and the project
#   igb, igbvf                   the kernel drivers of the 82576, so the PF starts where a real host's
#                                would (on igb) and the sysfs cases can compare vfio-pci with a kernel driver
#   pci-pf-stub                  a driver with sriov_configure whose remove() leaves the VFs enabled (the
#                                sysfs cases use it to reach "a PF with VFs and no driver")
TOP="drivers/vfio/pci/vfio-pci.ko drivers/vfio/vfio_iommu_type1.ko ?drivers/virtio/virtio_pci.ko
  net/9p/9pnet_virtio.ko fs/9p/9p.ko drivers/net/ethernet/intel/igb/igb.ko drivers/net/ethernet/intel/igbvf/igbvf.ko
  drivers/pci/pci-pf-stub.ko"

key=$( { echo "$KVER $TOP"; cat "$0" "$HERE/guest-init.sh"; sha256sum "$BUSYBOX"; } | sha256sum | cut -c1-16)
OUT=$OUT_DIR/initramfs-$KVER-$key.cpio.gz
if [ -f "$OUT" ]; then
  echo "$OUT"
  exit 0
fi
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR/initramfs-$KVER-"*.cpio.gz

# Depth-first over modules.dep: every module after its dependencies. modules.dep lists a module's
# dependencies in reverse load order, hence the walk from the last one.
ORDER=$(awk -v tops="$TOP" '
  function find(m,   s, n, sfx) {
    n = split(" .xz .zst .gz", sfx, " ")
    if (m in deps) return m
    for (s = 1; s <= n; s++) if ((m sfx[s]) in deps) return m sfx[s]
    return ""
  }
  function visit(m,   d, n, i) {
    if (m in seen) return
    seen[m] = 1
    n = split(deps[m], d, " ")
    for (i = n; i >= 1; i--) visit(d[i])
    print m
  }
  { k = $1; sub(/:$/, "", k); $1 = ""; deps[k] = $0 }
  END {
    n = split(tops, t, /[ \n]+/)
    for (i = 1; i <= n; i++) {
      if (t[i] == "") continue
      optional = substr(t[i], 1, 1) == "?"
      name = optional ? substr(t[i], 2) : t[i]
      k = find("kernel/" name)
      if (k == "") { if (optional) continue; print "module not found: " name > "/dev/stderr"; exit 1 }
      visit(k)
    }
  }' "$DEP")

R=$(mktemp -d "$OUT_DIR/root.XXXXXX")
trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{bin,dev,proc,sys,tmp,usr,lib,root} "$R/lib/modules/$KVER"
# mktemp made the root 0700: the guest's non-root stage 3 consumers must get past it.
chmod 755 "$R"
chmod 1777 "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"
cp "$HERE/guest-init.sh" "$R/init"
chmod 755 "$R/init"
: > "$R/modules.load"
for m in $ORDER; do
  plain=${m%.xz}
  plain=${plain%.zst}
  plain=${plain%.gz}
  mkdir -p "$R/lib/modules/$KVER/$(dirname "$plain")"
  # busybox insmod takes only uncompressed modules.
  case $m in
    *.xz) xz -dc "$KDIR/lib/modules/$KVER/$m" > "$R/lib/modules/$KVER/$plain" ;;
    *.zst) zstd -qdc "$KDIR/lib/modules/$KVER/$m" > "$R/lib/modules/$KVER/$plain" ;;
    *.gz) gzip -dc "$KDIR/lib/modules/$KVER/$m" > "$R/lib/modules/$KVER/$plain" ;;
    *) cp "$KDIR/lib/modules/$KVER/$m" "$R/lib/modules/$KVER/$plain" ;;
  esac
  echo "$plain" >> "$R/modules.load"
done
# libvirt (stage 4) looks up a VF's vfio-pci variant driver in modules.alias and refuses to start a guest
# with a PCI hostdev when it cannot read the file.
cp "$KDIR/lib/modules/$KVER/modules.alias" "$R/lib/modules/$KVER/"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "$OUT"

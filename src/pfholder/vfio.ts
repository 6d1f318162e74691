/**
 * The VFIO legacy (container/group) uapi, called from Node through koffi (see
 * docs/decisions/0005-vfio-ioctls-through-koffi.md): constants and struct layouts from
 * include/uapi/linux/vfio.h, and one function per system call or ioctl, each naming its C equivalent.
 *
 * Every failure throws a VfbError (KERNEL_REFUSED) whose details carry the errno name (`EACCES`…), the
 * operation and the device or path. Messages never contain the string given to GET_DEVICE_FD: it may
 * carry `vf_token=<uuid>`.
 */
import koffi from 'koffi';
import { constants as osConstants } from 'node:os';
import { VfbError } from '../errors.js';
import type { PciAddress } from '../pci/address.js';

// _IO(VFIO_TYPE, VFIO_BASE + n) with VFIO_TYPE ';' (0x3b) and VFIO_BASE 100: the VFIO ioctls carry no
// size or direction bits, the structs say their own size in argsz.
const vfioIo = (n: number): number => (0x3b << 8) | (100 + n);
const VFIO_GET_API_VERSION = vfioIo(0);
const VFIO_CHECK_EXTENSION = vfioIo(1);
const VFIO_SET_IOMMU = vfioIo(2);
const VFIO_GROUP_GET_STATUS = vfioIo(3);
const VFIO_GROUP_SET_CONTAINER = vfioIo(4);
const VFIO_GROUP_GET_DEVICE_FD = vfioIo(6);
const VFIO_DEVICE_GET_REGION_INFO = vfioIo(8);
const VFIO_DEVICE_FEATURE = vfioIo(17);

export const VFIO_API_VERSION = 0;
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_TYPE1v2_IOMMU = 3;
const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;
const VFIO_DEVICE_FEATURE_SET = 1 << 17;
const VFIO_DEVICE_FEATURE_PCI_VF_TOKEN = 0;
/** Region index of PCI config space on a vfio-pci device fd (VFIO_PCI_CONFIG_REGION_INDEX). */
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;

/** struct vfio_group_status { __u32 argsz; __u32 flags; } */
const GROUP_STATUS_SIZE = 8;
/** struct vfio_device_feature { __u32 argsz; __u32 flags; __u8 data[]; } followed by a 16-byte uuid_t. */
const VF_TOKEN_FEATURE_SIZE = 8 + 16;
/** struct vfio_region_info { __u32 argsz, flags, index, cap_offset; __u64 size, offset; } */
const REGION_INFO_SIZE = 32;

// O_RDWR | O_CLOEXEC (asm-generic/fcntl.h). CLOEXEC so a child of this process never inherits a VFIO
// fd: an inherited group or device fd would keep the PF or VF open after we close ours.
const O_RDWR = 0o2;
const O_CLOEXEC = 0o2000000;

const libc = koffi.load('libc.so.6');
// open(2) and ioctl(2) are variadic in C; koffi then takes each extra argument as a (type, value) pair.
const cOpen = libc.func('int open(const char *path, int flags, ...)');
const cIoctl = libc.func('int ioctl(int fd, unsigned long request, ...)');
const cClose = libc.func('int close(int fd)');
const cPread = libc.func('intptr_t pread(int fd, void *buf, size_t count, int64_t offset)');

const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(osConstants.errno)) {
  // First name wins: Node lists the canonical name before aliases (EAGAIN before EWOULDBLOCK).
  if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);
}

/** `EACCES` for 13; `errno 1234` for a number Node does not name. */
function errnoName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `errno ${n}`;
}

// What a user can do about the errnos VFIO answers with, per REFERENCE.md §1 and the kernel oracle.
const HINTS: Readonly<Record<string, string>> = {
  EACCES:
    "the VF token presented is missing or not the PF's current one (a PF can be reopened while its VFs are open only with the current token)",
  EBUSY: 'another process holds this IOMMU group open; a VFIO group has one user at a time',
  EPERM:
    'the IOMMU has no interrupt remapping: enable it, or load vfio_iommu_type1 with allow_unsafe_interrupts=1',
  ENOTTY: 'the device does not support VF tokens: it must be an SR-IOV PF bound to vfio-pci (Linux >= 5.7)',
  EINVAL:
    'VFIO rejected the request: a VF token was given for a device that is neither a PF nor a VF of a vfio-pci PF, or the token is malformed',
  ENOENT: 'the VFIO device node is missing: load vfio-pci and check that the device is bound to it',
  ENODEV: 'the device is not in this IOMMU group, or it went away',
};

function refused(op: string, target: string, errno: number): VfbError {
  const name = errnoName(errno);
  return new VfbError('KERNEL_REFUSED', `${op} on ${target} failed: ${name}`, {
    hint: HINTS[name] ?? 'the kernel refused the VFIO request; the errno says why',
    details: { errno: name, op, path: target },
  });
}

/** `open(path, O_RDWR | O_CLOEXEC)` */
export function openPath(path: string): number {
  const fd = cOpen(path, O_RDWR | O_CLOEXEC) as number;
  if (fd < 0) throw refused('open', path, koffi.errno());
  return fd;
}

/** `close(fd)`. Errors are not reported: Linux releases the descriptor even when close fails. */
export function closeFd(fd: number): void {
  cClose(fd);
}

/** `ioctl(container, VFIO_GET_API_VERSION)` → VFIO_API_VERSION (0) on every kernel so far. */
export function getApiVersion(container: number): number {
  const v = cIoctl(container, VFIO_GET_API_VERSION) as number;
  if (v < 0) throw refused('VFIO_GET_API_VERSION', '/dev/vfio/vfio', koffi.errno());
  return v;
}

/** `ioctl(container, VFIO_CHECK_EXTENSION, type) > 0` */
export function checkExtension(container: number, extension: number): boolean {
  const r = cIoctl(container, VFIO_CHECK_EXTENSION, 'unsigned long', extension) as number;
  if (r < 0) throw refused('VFIO_CHECK_EXTENSION', '/dev/vfio/vfio', koffi.errno());
  return r > 0;
}

/** `ioctl(container, VFIO_SET_IOMMU, type)`; needs a group in the container first. */
export function setIommu(container: number, type: number): void {
  if ((cIoctl(container, VFIO_SET_IOMMU, 'unsigned long', type) as number) < 0) {
    throw refused('VFIO_SET_IOMMU', '/dev/vfio/vfio', koffi.errno());
  }
}

export interface GroupStatus {
  /** Every device in the group is bound to a VFIO driver (or none). */
  readonly viable: boolean;
  readonly containerSet: boolean;
}

/** `struct vfio_group_status s = { .argsz = sizeof s }; ioctl(group, VFIO_GROUP_GET_STATUS, &s)` */
export function groupGetStatus(group: number, groupPath: string): GroupStatus {
  const s = Buffer.alloc(GROUP_STATUS_SIZE);
  s.writeUInt32LE(GROUP_STATUS_SIZE, 0);
  if ((cIoctl(group, VFIO_GROUP_GET_STATUS, 'void *', s) as number) < 0) {
    throw refused('VFIO_GROUP_GET_STATUS', groupPath, koffi.errno());
  }
  const flags = s.readUInt32LE(4);
  return {
    viable: (flags & VFIO_GROUP_FLAGS_VIABLE) !== 0,
    containerSet: (flags & VFIO_GROUP_FLAGS_CONTAINER_SET) !== 0,
  };
}

/** `ioctl(group, VFIO_GROUP_SET_CONTAINER, &container)` */
export function groupSetContainer(group: number, groupPath: string, container: number): void {
  const arg = Buffer.alloc(4);
  arg.writeInt32LE(container, 0);
  if ((cIoctl(group, VFIO_GROUP_SET_CONTAINER, 'void *', arg) as number) < 0) {
    throw refused('VFIO_GROUP_SET_CONTAINER', groupPath, koffi.errno());
  }
}

/**
 * `ioctl(group, VFIO_GROUP_GET_DEVICE_FD, "<addr>")`, or with a token
 * `ioctl(group, VFIO_GROUP_GET_DEVICE_FD, "<addr> vf_token=<uuid>")` as QEMU's `vf-token=` and DPDK's
 * `--vfio-vf-token` do. Returns the device fd.
 */
export function groupGetDeviceFd(group: number, device: PciAddress, token?: string): number {
  const fd = cIoctl(
    group,
    VFIO_GROUP_GET_DEVICE_FD,
    'const char *',
    token === undefined ? device : `${device} vf_token=${token}`,
  ) as number;
  if (fd < 0) throw refused('VFIO_GROUP_GET_DEVICE_FD', `device ${device}`, koffi.errno());
  return fd;
}

/**
 * Set the PF's VF token in place:
 * `struct { struct vfio_device_feature hdr; uuid_t token; } f = { .hdr.argsz = 24,
 *   .hdr.flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN }; ioctl(dev, VFIO_DEVICE_FEATURE, &f)`.
 * Allowed while VFs are open: they keep working, later VF opens need the new token.
 */
export function deviceSetVfToken(deviceFd: number, device: PciAddress, token: Uint8Array): void {
  if (token.length !== 16) throw new RangeError('a VF token is 16 bytes');
  const f = Buffer.alloc(VF_TOKEN_FEATURE_SIZE);
  f.writeUInt32LE(VF_TOKEN_FEATURE_SIZE, 0);
  f.writeUInt32LE(VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN, 4);
  f.set(token, 8);
  if ((cIoctl(deviceFd, VFIO_DEVICE_FEATURE, 'void *', f) as number) < 0) {
    throw refused('VFIO_DEVICE_FEATURE(SET|PCI_VF_TOKEN)', `device ${device}`, koffi.errno());
  }
}

export interface RegionInfo {
  readonly size: bigint;
  /** Offset of the region in the device fd, for pread/pwrite/mmap. */
  readonly offset: bigint;
}

/** `struct vfio_region_info r = { .argsz = sizeof r, .index = index }; ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &r)` */
export function deviceGetRegionInfo(deviceFd: number, device: PciAddress, index: number): RegionInfo {
  const r = Buffer.alloc(REGION_INFO_SIZE);
  r.writeUInt32LE(REGION_INFO_SIZE, 0);
  r.writeUInt32LE(index, 8);
  if ((cIoctl(deviceFd, VFIO_DEVICE_GET_REGION_INFO, 'void *', r) as number) < 0) {
    throw refused('VFIO_DEVICE_GET_REGION_INFO', `device ${device}`, koffi.errno());
  }
  return { size: r.readBigUInt64LE(16), offset: r.readBigUInt64LE(24) };
}

/** `pread(fd, buf, length, offset)`; short reads are returned as they are. */
export function preadFd(fd: number, what: string, length: number, offset: bigint): Buffer {
  const buf = Buffer.alloc(length);
  const n = Number(cPread(fd, buf, length, offset));
  if (n < 0) throw refused('pread', what, koffi.errno());
  return buf.subarray(0, n);
}

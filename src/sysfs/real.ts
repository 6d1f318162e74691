/**
 * Sysfs over a directory tree: `/sys` in production, a temporary tree laid out like it in tests
 * (and `/dev`, or a test's directory, for the VFIO groups: vfio-group.ts).
 * Each method is one or two file operations; the doc comment of the interface gives the shell
 * equivalent. Links and existence are looked up synchronously: the kernel answers those from its
 * dentry cache, never from the device, in microseconds, which is less than a trip through libuv's
 * thread pool costs; and in the libvirt hook, a short-lived process that reads nothing else, the
 * first asynchronous fs call would start that pool (four threads, about 4 ms of every guest start).
 * Attribute reads stay asynchronous: a device's driver may take its time to answer one.
 * Writes go through writeOnce: sysfs hands each write() call to the attribute's store
 * function as one value, so a value split over two calls would be two (wrong) values.
 */
// fs.promises, not node:fs/promises: in the hook's bundle this defers loading it (a millisecond)
// to the first attribute read, which the hook never makes.
import { constants, promises as fs, readlinkSync, statSync } from 'node:fs';
import { posix, resolve } from 'node:path';
import { VfbError } from '../errors.js';
import { isPciAddress, parsePciAddress, type PciAddress } from '../pci/address.js';
import { fromFsError, fsErrno, kernelRefusal } from './errno.js';
import { SysfsLayout, describe } from './layout.js';
import { checkSysfsName, isSysfsName } from './names.js';
import { sortPciAddresses } from './order.js';
import type { DeviceAttribute, Sysfs, WritableDeviceAttribute } from './sysfs.js';
import { heldVfioGroup } from './vfio-group.js';

export interface RealSysfsOptions {
  /** The sysfs mount point; `/sys` unless a test gives a tree of its own. */
  readonly root?: string;
  /** Where the device nodes are (VFIO groups under `<dev>/vfio`); `/dev` unless a test gives its own. */
  readonly dev?: string;
}

const VIRTFN = /^virtfn([0-9]{1,5})$/;

export class RealSysfs implements Sysfs {
  readonly description: string;
  private readonly at: SysfsLayout;
  private readonly dev: string;

  constructor(options: RealSysfsOptions = {}) {
    this.description = resolve(options.root ?? '/sys');
    this.at = new SysfsLayout(this.description);
    this.dev = resolve(options.dev ?? '/dev');
  }

  async listDevices(): Promise<PciAddress[]> {
    const names = await this.list(this.at.devices, describe.listDevices());
    return sortPciAddresses(names.filter(isPciAddress));
  }

  exists(addr: PciAddress): Promise<boolean> {
    const path = this.at.device(addr);
    try {
      statSync(path);
      return Promise.resolve(true);
    } catch (err) {
      if (fsErrno(err) === 'ENOENT') return Promise.resolve(false);
      return Promise.reject(fromFsError(err, path, describe.exists(addr)));
    }
  }

  async readAttribute(addr: PciAddress, name: DeviceAttribute): Promise<string> {
    const path = this.at.device(addr, name);
    try {
      return chomp(await fs.readFile(path, 'utf8'));
    } catch (err) {
      throw fromFsError(err, path, describe.read(addr, name));
    }
  }

  async writeAttribute(addr: PciAddress, name: WritableDeviceAttribute, value: string): Promise<void> {
    await writeOnce(this.at.device(addr, name), echo(value), describe.write(addr, name, value));
  }

  async driver(addr: PciAddress): Promise<string | null> {
    const target = await this.link(addr, 'driver');
    return target === null ? null : posix.basename(target);
  }

  async iommuGroup(addr: PciAddress): Promise<number | null> {
    const target = await this.link(addr, 'iommu_group');
    if (target === null) return null;
    const name = posix.basename(target);
    if (!/^[0-9]{1,9}$/.test(name)) {
      throw new VfbError(
        'INTERNAL',
        `the iommu_group link of ${addr} points to ${JSON.stringify(name.slice(0, 40))}`,
      );
    }
    return Number(name);
  }

  async physfn(addr: PciAddress): Promise<PciAddress | null> {
    const target = await this.link(addr, 'physfn');
    return target === null ? null : parsePciAddress(posix.basename(target));
  }

  async virtfns(addr: PciAddress): Promise<PciAddress[]> {
    const entries = await this.list(this.at.device(addr), describe.link(addr, 'virtfn'));
    const indexed = entries.flatMap((name) => {
      const m = VIRTFN.exec(name);
      return m ? [{ name, n: Number(m[1]) }] : [];
    });
    // readdir order is the directory's, not the VF's: virtfn10 would come before virtfn2.
    indexed.sort((a, b) => a.n - b.n);
    const vfs: PciAddress[] = [];
    for (const { name } of indexed) {
      const target = await this.link(addr, name);
      if (target !== null) vfs.push(parsePciAddress(posix.basename(target)));
    }
    return vfs;
  }

  async listDrivers(): Promise<string[]> {
    const names = await this.list(this.at.drivers, describe.listDrivers());
    return names.filter(isSysfsName).sort();
  }

  async bind(addr: PciAddress, driver: string): Promise<void> {
    checkSysfsName('driver', driver);
    await writeOnce(this.at.driver(driver, 'bind'), echo(addr), describe.bind(addr, driver));
  }

  async unbind(addr: PciAddress): Promise<void> {
    const driver = await this.driver(addr);
    if (driver === null) return;
    await writeOnce(this.at.device(addr, 'driver/unbind'), echo(addr), describe.unbind(addr, driver));
  }

  async probe(addr: PciAddress): Promise<void> {
    await writeOnce(this.at.driversProbe, echo(addr), describe.probe(addr));
  }

  async moduleParameter(module: string, param: string): Promise<string | null> {
    checkSysfsName('module', module);
    checkSysfsName('module parameter', param);
    const path = this.at.moduleParameter(module, param);
    try {
      return chomp(await fs.readFile(path, 'utf8'));
    } catch (err) {
      const errno = fsErrno(err);
      if (errno === 'ENOENT' || errno === 'ENOTDIR') return null;
      throw fromFsError(err, path, describe.moduleParameter(module, param));
    }
  }

  heldVfioGroup(group: number): Promise<string | null> {
    return heldVfioGroup(this.dev, group);
  }

  /** The target of a link under the device, null when the link is absent; ENOENT when the device is. */
  private async link(addr: PciAddress, name: string): Promise<string | null> {
    const path = this.at.device(addr, name);
    try {
      return readlinkSync(path);
    } catch (err) {
      if (fsErrno(err) !== 'ENOENT') throw fromFsError(err, path, describe.link(addr, name));
    }
    if (await this.exists(addr)) return null;
    throw kernelRefusal('ENOENT', this.at.device(addr), describe.link(addr, name));
  }

  private async list(dir: string, message: string): Promise<string[]> {
    try {
      return await fs.readdir(dir);
    } catch (err) {
      throw fromFsError(err, dir, message);
    }
  }
}

/**
 * One open(O_WRONLY) and one write(). No O_CREAT: sysfs has no files to create, and a missing
 * attribute must answer ENOENT, not turn into a new file in a test tree.
 */
async function writeOnce(path: string, data: string, message: string): Promise<void> {
  const buf = Buffer.from(data, 'utf8');
  try {
    const fh = await fs.open(path, constants.O_WRONLY);
    try {
      const { bytesWritten } = await fh.write(buf, 0, buf.length, null);
      if (bytesWritten !== buf.length) throw kernelRefusal('EIO', path, `${message} (short write)`);
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof VfbError) throw err;
    throw fromFsError(err, path, message);
  }
}

/** What `echo <value> >` writes: the value and a newline, which every store function accepts. */
function echo(value: string): string {
  return `${value}\n`;
}

function chomp(s: string): string {
  return s.endsWith('\n') ? s.slice(0, -1) : s;
}

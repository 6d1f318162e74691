/**
 * A stand-in for libvirt's run directory (/run/libvirt/qemu): status files of running guests,
 * written the way libvirt's qemu driver writes them — the text of a real status file
 * (test/fixtures/libvirt-run/pf-owner.xml) with the guest's name, UUID, state and QEMU pid, written
 * 0600 to `<name>.xml.new` and renamed into place (virXMLSaveFile → virFileRewrite), in a 0755
 * directory (the driver creates its state directory with mode 0777 under umask 022).
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoPath } from './repo.js';

export const STATUS_FIXTURE = repoPath('test', 'fixtures', 'libvirt-run', 'pf-owner.xml');

/** The fixture's own guest, as written in it. */
export const FIXTURE_GUEST = {
  name: 'pf-owner',
  uuid: '7c2e9a41-5b3d-4f6e-8a1c-0d9e8f7a6b5c',
  pid: 195139,
} as const;

export interface StatusGuest {
  readonly name: string;
  readonly uuid: string;
  readonly pid: number;
  /** libvirt's state name; running unless given. */
  readonly state?: string;
}

/** The status file libvirt keeps for `guest` while it runs. */
export function statusXml(guest: StatusGuest): string {
  const text = readFileSync(STATUS_FIXTURE, 'utf8');
  return text
    .replace(
      `<domstatus state='running' reason='booted' pid='${FIXTURE_GUEST.pid}'>`,
      `<domstatus state='${guest.state ?? 'running'}' reason='booted' pid='${guest.pid}'>`,
    )
    .replaceAll(FIXTURE_GUEST.name, guest.name)
    .replace(FIXTURE_GUEST.uuid, guest.uuid);
}

/** Creates the run directory as libvirt does (0755); returns it. */
export async function makeRunDirectory(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  await chmod(path, 0o755);
  return path;
}

/** Writes `<name>.xml` as libvirt does; returns its path. */
export async function writeStatusFile(directory: string, guest: StatusGuest): Promise<string> {
  const file = join(directory, `${guest.name}.xml`);
  await writeFile(`${file}.new`, statusXml(guest), { mode: 0o600 });
  await rename(`${file}.new`, file);
  return file;
}

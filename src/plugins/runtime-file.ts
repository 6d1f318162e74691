/**
 * 0600 files under the runtime directory (/run/vfbroker) for PF drivers that read their token from a
 * file instead of argv. Written to a temporary name and renamed, so a driver never reads half a
 * token; removed when the driver stops.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { VfbError } from '../errors.js';

const SAFE_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

export async function writeRuntimeSecret(directory: string, name: string, content: string): Promise<string> {
  const file = runtimePath(directory, name);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
  return file;
}

export async function removeRuntimeFile(directory: string, name: string): Promise<void> {
  await rm(runtimePath(directory, name), { force: true });
}

function runtimePath(directory: string, name: string): string {
  if (!SAFE_NAME.test(name) || name === '.' || name === '..') {
    throw new VfbError('INTERNAL', `invalid runtime file name ${JSON.stringify(name)}`);
  }
  return path.join(directory, name);
}

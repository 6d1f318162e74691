/**
 * The demo's directory: everything `vfbroker demo` makes lives in one fresh directory under the
 * temporary directory, so that cleaning up is removing it, and so that every process the demo starts
 * names it on its command line (which is how they are found again: src/demo/processes.ts).
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as z from 'zod';
import { VfbError } from '../errors.js';

const WORKSPACE_PREFIX = 'vfbroker-demo-';

export interface Workspace {
  readonly root: string;
  readonly brokerConfig: string;
  /** What /etc/vfbroker/hook.json holds on a real host: where the hook finds bus and sysfs. */
  readonly hookSettings: string;
  /** The broker's JSON log lines (stdout and stderr). */
  readonly brokerLog: string;
  /** The simulated host's state, shared by the broker, the stand-ins and the hook. */
  readonly hostState: string;
  /** The private bus: its socket, configuration and policy copy. */
  readonly bus: string;
  /** broker.yaml's stateDirectory (leases, journal, the file token store). */
  readonly state: string;
  readonly runtime: string;
  /** pf_bb_config's log files and command sockets. */
  readonly logs: string;
  readonly sockets: string;
  /** The generated PF driver stand-ins. */
  readonly standIns: string;
  /** The guests' definitions as the demo wrote them (they carry tokens: mode 0600). */
  readonly guests: string;
  /** What `vfbroker demo --stop` needs: see DemoRecord. */
  readonly record: string;
}

export function workspaceAt(root: string): Workspace {
  return {
    root,
    brokerConfig: join(root, 'broker.yaml'),
    hookSettings: join(root, 'hook.json'),
    brokerLog: join(root, 'broker.log'),
    hostState: join(root, 'host-state.json'),
    bus: join(root, 'bus'),
    state: join(root, 'state'),
    runtime: join(root, 'run'),
    logs: join(root, 'log'),
    sockets: join(root, 'sockets'),
    standIns: join(root, 'stand-ins'),
    guests: join(root, 'guests'),
    record: join(root, 'demo.json'),
  };
}

/** A fresh workspace, owner-only like the broker's own directories. */
export async function createWorkspace(): Promise<Workspace> {
  const ws = workspaceAt(await mkdtemp(join(tmpdir(), WORKSPACE_PREFIX)));
  for (const dir of [ws.bus, ws.logs, ws.sockets, ws.standIns, ws.guests]) {
    await mkdir(dir, { mode: 0o700 });
  }
  return ws;
}

const RecordSchema = z.strictObject({
  busAddress: z.string(),
  brokerPid: z.number().int().positive(),
  busPid: z.number().int().positive(),
});

/** The demo's processes that are not found by their command line alone, and the bus they share. */
export type DemoRecord = z.infer<typeof RecordSchema>;

export async function writeRecord(ws: Workspace, record: DemoRecord): Promise<void> {
  await writeFile(ws.record, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
}

/** The workspace `vfbroker demo --stop <dir>` names, refusing a directory the demo did not make. */
export async function openWorkspace(dir: string): Promise<{ ws: Workspace; record: DemoRecord }> {
  const ws = workspaceAt(resolve(dir));
  let text: string;
  try {
    text = await readFile(ws.record, 'utf8');
  } catch {
    throw new VfbError('NOT_FOUND', `${ws.root} is not a directory left by \`vfbroker demo --keep\``, {
      hint: 'give the directory the demo printed at its end',
    });
  }
  const parsed = RecordSchema.safeParse(safeJson(text));
  if (!parsed.success) {
    throw new VfbError('STORE_CORRUPT', `${ws.record} is not a record written by \`vfbroker demo\``, {
      hint: `stop its processes by hand (pgrep -f ${ws.root}), then remove the directory`,
    });
  }
  return { ws, record: parsed.data };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

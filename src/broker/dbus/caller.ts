/**
 * Who is calling: the bus vouches for the uid and pid of a connection (GetConnectionCredentials,
 * from SO_PEERCRED when it connected), /proc adds its groups and systemd unit. The answer is cached
 * per unique name, which the bus never reuses, and dropped when that name leaves the bus.
 *
 * Shell equivalent: `busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus
 * GetConnectionCredentials s :1.42`, then `cat /proc/PID/status /proc/PID/cgroup`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DBusError, MessageType, Variant, type Message } from 'dbus-next';
import type { Caller } from '../api.js';
import { VfbError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { busDriverCall, type BusConnection } from '../../dbus/connection.js';
import { parseProcStatus, unitFromCgroup } from './proc.js';

/** Callers with a lookup cached; a safety net in case a NameOwnerChanged is ever missed. */
const MAX_CACHED = 4096;

// Only disconnections (new owner ""): the bus would otherwise copy us every name change on the host.
const NAME_LOST_MATCH =
  "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus'," +
  "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg2=''";

export interface CallerResolverOptions {
  readonly logger: Logger;
  /** Deadline for each call to the bus. */
  readonly timeoutMs: number;
  /** Where /proc is; tests point it at a fixture. */
  readonly procRoot?: string;
}

export class CallerResolver {
  private readonly cache = new Map<string, Promise<Caller>>();
  private readonly procRoot: string;
  private readonly onSignal = (msg: Message) => this.onNameLost(msg);

  constructor(
    private readonly connection: BusConnection,
    private readonly options: CallerResolverOptions,
  ) {
    this.procRoot = options.procRoot ?? '/proc';
  }

  async start(): Promise<void> {
    this.connection.bus.on('message', this.onSignal);
    await this.connection.call(busDriverCall('AddMatch', 's', [NAME_LOST_MATCH]), {
      timeoutMs: this.options.timeoutMs,
    });
  }

  async stop(): Promise<void> {
    this.connection.bus.off('message', this.onSignal);
    this.cache.clear();
    if (this.connection.closed) return;
    await this.connection.call(busDriverCall('RemoveMatch', 's', [NAME_LOST_MATCH]), {
      timeoutMs: this.options.timeoutMs,
    });
  }

  /** The caller behind a unique bus name. Rejects with a VfbError when the bus cannot say. */
  resolve(sender: string): Promise<Caller> {
    const cached = this.cache.get(sender);
    if (cached) return cached;
    const lookup = this.lookup(sender);
    this.cache.set(sender, lookup);
    lookup.catch(() => {
      // A failed lookup is retried by the next call instead of being remembered.
      if (this.cache.get(sender) === lookup) this.cache.delete(sender);
    });
    if (this.cache.size > MAX_CACHED) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    return lookup;
  }

  private async lookup(sender: string): Promise<Caller> {
    let reply: Message;
    try {
      reply = await this.connection.call(busDriverCall('GetConnectionCredentials', 's', [sender]), {
        timeoutMs: this.options.timeoutMs,
      });
    } catch (err) {
      if (err instanceof VfbError) throw err;
      const gone = err instanceof DBusError && err.type === 'org.freedesktop.DBus.Error.NameHasNoOwner';
      throw new VfbError(
        'UNAVAILABLE',
        gone
          ? 'the caller left the bus before it could be identified'
          : 'the bus did not identify the caller',
        { cause: err },
      );
    }
    const creds = (reply.body[0] ?? {}) as Record<string, unknown>;
    const uid = u32(creds['UnixUserID']);
    const pid = u32(creds['ProcessID']);
    if (uid === null || pid === null) {
      throw new VfbError('DENIED', "the bus did not vouch for the caller's user and process", {
        hint: 'call the broker over the system bus from a local process',
      });
    }
    const [status, cgroup] = await Promise.all([this.readProc(pid, 'status'), this.readProc(pid, 'cgroup')]);
    const parsed = status === null ? null : parseProcStatus(status);
    // The pid was the caller's when it connected; if /proc/PID now belongs to another uid, the caller
    // has exited or changed identity and the pid tells nothing about it.
    const procTrusted = parsed !== null && parsed.uids.every((id) => id === uid);
    if (!procTrusted)
      this.options.logger.debug({ sender, pid }, "caller's /proc entry missing or changed hands");
    const busGids = u32Array(creds['UnixGroupIDs']);
    return Object.freeze({
      uid,
      pid,
      gids: Object.freeze(busGids ?? (procTrusted ? [...parsed.gids] : [])),
      unit: procTrusted && cgroup !== null ? unitFromCgroup(cgroup) : null,
      busName: sender,
    });
  }

  private async readProc(pid: number, file: 'status' | 'cgroup'): Promise<string | null> {
    try {
      return await readFile(join(this.procRoot, String(pid), file), 'utf8');
    } catch {
      return null;
    }
  }

  private onNameLost(msg: Message): void {
    if (msg.type !== MessageType.SIGNAL || msg.sender !== 'org.freedesktop.DBus') return;
    if (msg.member !== 'NameOwnerChanged' || msg.path !== '/org/freedesktop/DBus') return;
    const [name, , newOwner] = msg.body as unknown[];
    if (typeof name === 'string' && newOwner === '') this.cache.delete(name);
  }
}

function u32(v: unknown): number | null {
  return v instanceof Variant && v.signature === 'u' && typeof v.value === 'number' ? v.value : null;
}

/** UnixGroupIDs, which newer buses send (taken from the socket, so better than /proc). */
function u32Array(v: unknown): number[] | null {
  if (!(v instanceof Variant) || v.signature !== 'au' || !Array.isArray(v.value)) return null;
  const ids = v.value as unknown[];
  return ids.every((n) => typeof n === 'number') ? ids : null;
}

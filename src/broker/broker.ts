/**
 * The broker core: implements BrokerApi over the managed PFs, the token cache, the policy and the
 * lease table. It never sees D-Bus (src/broker/dbus/ turns messages into these calls) and never
 * touches Vault directly (src/broker/store/). Every decision is audited as one structured log line:
 * caller, guest or app, VF, verdict, rule — never the token.
 */
import {
  isAcceptingVerdict,
  type BrokerApi,
  type BrokerEvents,
  type BrokerStatus,
  type Caller,
  type DeviceVerdict,
  type PfSummary,
  type PrepareDevice,
  type RotationState,
} from './api.js';
import { decideApp, decideGuest, decideOwner, type Decision } from './policy/decide.js';
import { decideDevice, type DeviceFacts, type GuestRef } from './verdict.js';
import type { Lease, LeaseTable } from './leases.js';
import { pluginPfConfig, type ManagedPf, type ManagedPfs, type VfLocation } from './managed-pfs.js';
import type { Rotator } from './rotation/rotator.js';
import type { TokenCache } from './store/token-cache.js';
import type { PfTokens, TokenStore } from './store/token-store.js';
import type { Policy } from '../config/policy-config.js';
import { VfbError, isVfbError } from '../errors.js';
import type { RunningGuests } from '../libvirt/running-guests.js';
import { auditLogger, type Logger } from '../log.js';
import type { PciAddress } from '../pci/address.js';
import type { PluginContext } from '../plugins/contract.js';
import { pfDown, pfStatus, pfUp } from '../plugins/lifecycle/pf.js';
import { renderPlan, type PfPlan } from '../plugins/plan.js';
import { VERSION } from '../version.js';

export interface BrokerDeps {
  readonly hostId: string;
  readonly pfs: ManagedPfs;
  readonly store: TokenStore;
  readonly tokens: TokenCache;
  readonly leases: LeaseTable;
  /** The policy in force; SIGHUP swaps it, so it is read per call. */
  readonly policy: () => Policy;
  readonly rotator: Rotator;
  /** What plugins run with: sysfs, the process runner, the runtime directory. */
  readonly context: PluginContext;
  /** The checks every plan of a PF must pass before anything changes (driverctl's overrides). */
  readonly planCheck: (pf: ManagedPf) => (plan: PfPlan) => Promise<void>;
  /** Runs a PF's life cycle with its current wanted VF count; records the outcome on the PF. */
  readonly bringUp: (pf: ManagedPf) => Promise<void>;
  readonly events: BrokerEvents;
  /** Which running guest's QEMU a caller is, for the owner rules that name guests (SetNumVfs). */
  readonly runningGuests: RunningGuests;
  readonly logger: Logger;
  readonly now?: () => number;
}

export class Broker implements BrokerApi {
  readonly #d: BrokerDeps;
  readonly #audit: Logger;
  readonly #startedAt: number;
  readonly #ownUid: number;

  constructor(deps: BrokerDeps) {
    this.#d = deps;
    this.#audit = auditLogger(deps.logger);
    this.#startedAt = (deps.now ?? Date.now)();
    this.#ownUid = process.geteuid?.() ?? 0;
  }

  async prepareGuest(
    caller: Caller,
    guestUuid: string,
    guestName: string,
    devices: readonly PrepareDevice[],
  ): Promise<DeviceVerdict[]> {
    this.#requireAdmin(caller, 'PrepareGuest');
    const guest: GuestRef = { uuid: guestUuid.toLowerCase(), name: guestName };
    const decisions: DeviceVerdict[] = [];
    const accepted: { vf: PciAddress; pf: PciAddress }[] = [];
    const audited: { vf: PciAddress; verdict: string; rule: string | null }[] = [];
    const found = devices.map((device) => this.#lookUp(guest, device));
    const tokens = await this.#tokensFor(found);
    for (const [i, device] of devices.entries()) {
      const { facts, rule } = this.#facts(guest, device, found[i] as Found, tokens);
      const { verdict, message } = decideDevice(guest, facts);
      decisions.push({ address: device.address, verdict, message });
      if (isAcceptingVerdict(verdict) && facts.kind === 'managed')
        accepted.push({ vf: device.address, pf: facts.pf });
      audited.push({ vf: device.address, verdict, rule });
    }
    // One audit line per call, each device in it: a guest start is one decision to read back.
    this.#audit.info(
      { event: 'prepare', ...who(caller), guest: guest.uuid, guestName, devices: audited },
      'PrepareGuest decision',
    );
    const refused = decisions.filter((d) => !isAcceptingVerdict(d.verdict));
    if (refused.length === 0) {
      await this.#d.leases.prepare(guest.uuid, guestName, accepted);
    } else {
      for (const d of refused) this.#d.events.guestRefused(guest.uuid, d.address, d.verdict);
    }
    return decisions;
  }

  async guestStarted(caller: Caller, guestUuid: string): Promise<void> {
    this.#requireAdmin(caller, 'GuestStarted');
    const n = await this.#d.leases.started(guestUuid.toLowerCase());
    this.#audit.info(
      { event: 'started', ...who(caller), guest: guestUuid.toLowerCase(), leases: n },
      'guest started',
    );
  }

  async releaseGuest(caller: Caller, guestUuid: string, reason: string): Promise<void> {
    this.#requireAdmin(caller, 'ReleaseGuest');
    const released = await this.#d.leases.release(guestUuid.toLowerCase());
    this.#audit.info(
      { event: 'release', ...who(caller), guest: guestUuid.toLowerCase(), reason, vfs: released },
      'guest released',
    );
    this.#d.rotator.leasesChanged();
  }

  async getToken(caller: Caller, address: PciAddress): Promise<string> {
    const location = this.#d.pfs.locate(address);
    const pf = location?.pf ?? (this.#d.pfs.get(address) ? address : null);
    const managed = pf === null ? undefined : this.#d.pfs.get(pf);
    if (!managed || pf === null) {
      throw new VfbError('NOT_FOUND', `${address} is neither a PF vfbroker manages nor one of its VFs`);
    }
    let rule: unknown = 'root';
    if (!this.#isAdmin(caller)) {
      const decision =
        location === null
          ? { allowed: false, reason: 'only root may read a PF token' }
          : decideApp(this.#d.policy(), caller, address, this.#d.pfs.locate);
      this.#audit.info(
        {
          event: 'get-token',
          ...who(caller),
          vf: address,
          allowed: decision.allowed,
          reason: decision.reason,
        },
        'GetToken decision',
      );
      if (!decision.allowed)
        throw new VfbError(
          'DENIED',
          `uid ${caller.uid} may not read the token of ${address}: ${decision.reason}`,
        );
      rule = decision.reason;
    }
    if (!managed.plugin.manifest.needsToken) {
      throw new VfbError(
        'NOT_FOUND',
        `PF ${pf} (plugin ${managed.plugin.manifest.name}) has no token: its VFs open without one`,
      );
    }
    const tokens = await this.#tokensOf(pf);
    if (this.#isAdmin(caller))
      this.#audit.info(
        { event: 'get-token', ...who(caller), vf: address, allowed: true, reason: rule },
        'GetToken decision',
      );
    return tokens.active.token;
  }

  async rotate(caller: Caller, pf: PciAddress): Promise<RotationState> {
    this.#requireAdmin(caller, 'Rotate');
    const managed = this.#managed(pf);
    this.#audit.info({ event: 'rotate', ...who(caller), pf }, 'rotation requested');
    return this.#d.rotator.rotate(managed);
  }

  async listPfs(_caller: Caller): Promise<PfSummary[]> {
    return Promise.all(this.#d.pfs.all().map((m) => this.#summary(m)));
  }

  async status(_caller: Caller): Promise<BrokerStatus> {
    const storeReachable = await this.#d.store.probe().then(
      () => true,
      () => false,
    );
    return {
      version: VERSION,
      hostId: this.#d.hostId,
      pfs: this.#d.pfs.all().length,
      leases: this.#d.leases.all().length,
      storeReachable,
      uptimeSeconds: Math.floor(((this.#d.now ?? Date.now)() - this.#startedAt) / 1000),
    };
  }

  /**
   * Changes a PF's VF count through its plugin (limits, 0 first, VF binding, PF driver), for root or
   * a consumer policy.yaml names as the PF's owner (an application, or a guest through its QEMU).
   * The kernel destroys every VF when the count changes, so a PF whose VFs are leased to guests is
   * refused.
   */
  async setNumVfs(caller: Caller, pf: PciAddress, count: number): Promise<void> {
    const managed = this.#managed(pf);
    const asGuest = this.#isAdmin(caller) ? {} : await this.#requireOwner(caller, pf, count);
    // The checks run inside the change: no guest can lease a VF between them and the change.
    await this.#d.pfs.change(pf, async () => {
      if (this.#rotating(managed)) {
        throw new VfbError('BUSY', `PF ${pf} is rotating its token; its VF count cannot change meanwhile`, {
          hint: `retry when \`vfbroker token status\` shows ${pf} up`,
        });
      }
      const leased = this.#d.leases.ofPf(pf);
      if (leased.length > 0 && count !== managed.vfs.length) {
        throw new VfbError(
          'BUSY',
          `PF ${pf} has VFs in use by ${guestNames(leased)}; changing its VF count would remove them`,
          {
            hint: 'stop those guests first',
          },
        );
      }
      // Plan first: a count the device or its driver cannot take is refused before anything changes.
      await pfUp(this.#d.context, managed.plugin, pluginPfConfig(managed.entry, count), null, {
        dryRun: true,
        check: this.#d.planCheck(managed),
      });
      const previous = managed.wantedVfs;
      managed.wantedVfs = count;
      await this.#d.bringUp(managed);
      if (managed.state !== 'up') managed.wantedVfs = previous;
    });
    if (managed.state !== 'up') {
      throw new VfbError(
        'COMMAND_FAILED',
        `PF ${pf} did not come up with ${count} VFs: ${managed.lastError ?? 'unknown error'}`,
        {
          hint: `see \`vfbroker pf status ${pf}\``,
        },
      );
    }
    this.#audit.info(
      { event: 'set-num-vfs', ...who(caller), ...asGuest, pf, count, vfs: managed.vfs.length },
      'VF count changed',
    );
  }

  /**
   * An owner rule must name the caller: as an application (uid, groups, unit), or — when a rule
   * names a guest for this PF — as the guest whose QEMU it is, which libvirt's status files say
   * (src/libvirt/running-guests.ts). Without such a rule the files are not read at all. Returns
   * what the audit lines say of the caller as a guest: recognised, why not, or nothing.
   */
  async #requireOwner(
    caller: Caller,
    pf: PciAddress,
    count: number,
  ): Promise<Readonly<Record<string, string>>> {
    const policy = this.#d.policy();
    let decision = decideOwner(policy, { kind: 'app', caller }, pf);
    let subject = `uid ${caller.uid}`;
    let asGuest: Readonly<Record<string, string>> = {};
    if (!decision.allowed && policy.owners.some((o) => o.pf === pf && o.subject.kind === 'guest')) {
      const found = await this.#d.runningGuests.byQemuPid(caller.pid);
      if (found.found) {
        const { uuid, name } = found.guest;
        asGuest = { guest: uuid, guestName: name };
        subject = `guest ${name} (${uuid}, QEMU pid ${caller.pid})`;
        decision = decideOwner(policy, { kind: 'guest', uuid }, pf);
      } else {
        asGuest = { notGuest: found.reason };
        decision = { ...decision, reason: `${decision.reason}; ${found.reason}` };
      }
    }
    this.#audit.info(
      {
        event: 'set-num-vfs',
        ...who(caller),
        ...asGuest,
        pf,
        count,
        allowed: decision.allowed,
        reason: decision.reason,
      },
      'SetNumVfs decision',
    );
    if (!decision.allowed)
      throw new VfbError('DENIED', `${subject} may not set the VF count of ${pf}: ${decision.reason}`);
    return asGuest;
  }

  async pfUp(caller: Caller, pf: PciAddress, dryRun: boolean): Promise<string> {
    this.#requireAdmin(caller, 'PfUp');
    const managed = this.#managed(pf);
    const config = pluginPfConfig(managed.entry, managed.wantedVfs);
    const { plan } = await pfUp(this.#d.context, managed.plugin, config, null, {
      dryRun: true,
      check: this.#d.planCheck(managed),
    });
    if (dryRun) return renderPlan(plan);
    await this.#d.pfs.change(pf, async () => {
      if (this.#rotating(managed)) throw rotatingError(pf);
      const leased = this.#d.leases.ofPf(pf);
      if (plan.drain.required && leased.length > 0) {
        throw new VfbError(
          'BUSY',
          `PF ${pf}: ${plan.drain.reason ?? 'bringing it up removes its VFs'}, and guests hold them (${guestNames(leased)})`,
          {
            hint: 'stop those guests first',
          },
        );
      }
      this.#audit.info({ event: 'pf-up', ...who(caller), pf }, 'PF up requested');
      await this.#d.bringUp(managed);
    });
    if (managed.state !== 'up') {
      throw new VfbError(
        'COMMAND_FAILED',
        `PF ${pf} did not come up: ${managed.lastError ?? 'unknown error'}`,
        {
          hint: `see \`vfbroker pf status ${pf}\``,
        },
      );
    }
    return renderPlan(plan);
  }

  async pfDown(caller: Caller, pf: PciAddress, release: boolean): Promise<void> {
    this.#requireAdmin(caller, 'PfDown');
    const managed = this.#managed(pf);
    await this.#d.pfs.change(pf, async () => {
      if (this.#rotating(managed)) throw rotatingError(pf);
      const leased = this.#d.leases.ofPf(pf);
      if (leased.length > 0) {
        throw new VfbError('BUSY', `PF ${pf} has VFs in use by ${guestNames(leased)}`, {
          hint: 'stop those guests first',
        });
      }
      this.#audit.info({ event: 'pf-down', ...who(caller), pf, release }, 'PF down requested');
      let refused = false;
      try {
        await pfDown(this.#d.context, managed.plugin, pluginPfConfig(managed.entry, managed.wantedVfs), {
          release,
        });
      } catch (err) {
        // BUSY: a VF is open, and the down was refused before anything changed.
        refused = isVfbError(err, 'BUSY');
        throw err;
      } finally {
        if (!refused) {
          managed.state = 'down';
          await this.#d.pfs.refreshVfs(this.#d.context.sysfs, pf);
        }
      }
    });
  }

  async pfStatus(_caller: Caller, pf: PciAddress): Promise<string> {
    const managed = this.#managed(pf);
    const status = await pfStatus(
      this.#d.context,
      managed.plugin,
      pluginPfConfig(managed.entry, managed.wantedVfs),
    );
    return JSON.stringify({
      ...status,
      brokerState: managed.state,
      lastError: managed.lastError,
      pluginReason: managed.pluginReason,
    });
  }

  /** What PrepareGuest knows of a device before any token is read. */
  #lookUp(guest: GuestRef, device: PrepareDevice): Found {
    const location = this.#d.pfs.locate(device.address);
    const managed = location ? this.#d.pfs.get(location.pf) : undefined;
    if (!location || !managed) return null;
    const policy = decideGuest(this.#d.policy(), guest.uuid, device.address, this.#d.pfs.locate);
    return { location, managed, policy, needsToken: managed.plugin.manifest.needsToken };
  }

  /**
   * The tokens of the PFs whose tokens the verdicts compare: once per PF, not once per device (a
   * guest's VFs are mostly on one PF), and none for a device the policy refuses.
   */
  async #tokensFor(found: readonly Found[]): Promise<ReadonlyMap<PciAddress, PfTokens | null>> {
    const pfs = new Set<PciAddress>();
    for (const f of found) if (f?.needsToken && f.policy.allowed) pfs.add(f.location.pf);
    return new Map(
      await Promise.all([...pfs].map(async (pf) => [pf, await this.#tokensOrNull(pf)] as const)),
    );
  }

  #facts(
    guest: GuestRef,
    device: PrepareDevice,
    found: Found,
    tokenMap: ReadonlyMap<PciAddress, PfTokens | null>,
  ): { facts: DeviceFacts; rule: string | null } {
    if (found === null) return { facts: { kind: 'unmanaged', address: device.address }, rule: null };
    const { location, managed, policy, needsToken } = found;
    const lease = this.#d.leases.get(device.address);
    // A device the policy refuses is decided without its PF's token, as #tokensFor read none for it.
    const tokens = needsToken && policy.allowed ? (tokenMap.get(location.pf) ?? null) : null;
    return {
      rule: policy.reason,
      facts: {
        kind: 'managed',
        address: device.address,
        pf: location.pf,
        index: location.index,
        needsToken,
        policy,
        pfProblem: this.#d.pfs.changing(location.pf)
          ? 'a change of its VFs is under way: a new VF count, pf up, pf down or a repair'
          : managed.state === 'up' || managed.state === 'rotating'
            ? null
            : (managed.lastError ?? `the PF is ${managed.state}`),
        rotating: managed.state === 'rotating',
        heldBy:
          lease && lease.guestUuid !== guest.uuid ? { uuid: lease.guestUuid, name: lease.guestName } : null,
        activeToken: tokens?.active.token ?? null,
        activeGeneration: tokens?.active.generation ?? 0,
        presentedToken: device.presentedToken,
      },
    };
  }

  async #summary(m: ManagedPf): Promise<PfSummary> {
    const needsToken = m.plugin.manifest.needsToken;
    const tokens = needsToken ? await this.#tokensOrNull(m.entry.address).catch(() => null) : null;
    const rotation = this.#d.rotator.status(m.entry.address);
    return {
      address: m.entry.address,
      plugin: m.plugin.manifest.name,
      state: m.state,
      numVfs: m.vfs.length,
      needsToken,
      generation: tokens?.active.generation ?? 0,
      rotationMode: m.plugin.manifest.rotation,
      leases: this.#d.leases.ofPf(m.entry.address).length,
      activeSince: tokens?.active.createdAt ?? '',
      pendingGeneration: rotation.pendingGeneration ?? 0,
      rotationStep: rotation.step ?? '',
      waitingFor: rotation.waitingFor.map((g) => g.name).join(', '),
      drainDeadline: rotation.deadline ?? '',
    };
  }

  /**
   * Root, or the user the broker runs as (`vfbroker demo` runs it unprivileged): either can read
   * the store and the broker's memory anyway, so the policy has nothing to withhold from them.
   */
  #isAdmin(caller: Caller): boolean {
    return caller.uid === 0 || caller.uid === this.#ownUid;
  }

  #requireAdmin(caller: Caller, method: string): void {
    if (!this.#isAdmin(caller)) {
      throw new VfbError('DENIED', `${method} is for root only (caller uid ${caller.uid})`, {
        hint: 'the libvirt hook and `vfbroker` run as root; applications may only call GetToken, ListPfs, Status and PfStatus',
      });
    }
  }

  #managed(pf: PciAddress): ManagedPf {
    const managed = this.#d.pfs.get(pf);
    if (!managed)
      throw new VfbError('NOT_FOUND', `PF ${pf} is not managed by vfbroker`, {
        hint: 'list the PFs with `vfbroker pf status`',
      });
    return managed;
  }

  /** Holding the PF (drain, apply), or anywhere in a rotation the journal shows under way. */
  #rotating(managed: ManagedPf): boolean {
    return managed.state === 'rotating' || this.#d.rotator.underWay(managed.entry.address);
  }

  #tokensOf(pf: PciAddress): Promise<PfTokens> {
    return this.#d.tokens.get(pf);
  }

  /** The PF's tokens, or null when it has none yet (never brought up). Store failures propagate. */
  async #tokensOrNull(pf: PciAddress): Promise<PfTokens | null> {
    try {
      return await this.#d.tokens.get(pf);
    } catch (err) {
      if (isVfbError(err, 'NOT_FOUND')) return null;
      throw err;
    }
  }
}

/** A device of a PF vfbroker manages, where it sits and what the policy says of it; null otherwise. */
type Found = {
  readonly location: VfLocation;
  readonly managed: ManagedPf;
  readonly policy: Decision;
  readonly needsToken: boolean;
} | null;

function rotatingError(pf: PciAddress): VfbError {
  return new VfbError('BUSY', `PF ${pf} is rotating its token; it cannot change meanwhile`, {
    hint: `retry when \`vfbroker token status\` shows ${pf} up`,
  });
}

function guestNames(leases: readonly Lease[]): string {
  return [...new Set(leases.map((l) => l.guestName))].join(', ');
}

function who(caller: Caller): Record<string, unknown> {
  return { uid: caller.uid, pid: caller.pid, unit: caller.unit, sender: caller.busName };
}

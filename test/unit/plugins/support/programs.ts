/**
 * Fake versions of the programs plugins run, acting on the simulated kernel the way the real ones
 * act on a real one: the DPDK PF application and vfbroker's PF holder open the PF through the
 * simulator's VFIO and set the token, pf_bb_config does too and leaves a daemon pgrep can find,
 * and the Mellanox tools keep the firmware, e-switch and VF settings a real card would.
 */
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PciAddress } from '../../../../src/pci/address.js';
import type { FakeProcess } from '../../../support/fake-runner.js';
import type { World } from './world.js';

function errnoOf(err: unknown): string {
  return (err as { details?: { errno?: string } }).details?.errno ?? 'EIO';
}

function valueAfter(argv: readonly string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i < 0 ? undefined : argv[i + 1];
}

export interface DpdkBehaviour {
  /** Printed once the PF is open. */
  readyLine: string;
  /** Exit with status 1 right after starting, as an application with a bad argument would. */
  failStart: boolean;
}

/** A DPDK PF application (net_e1000_igb) that opens the PF given with -a, token from argv or file. */
export function installDpdkApp(world: World, name: string): DpdkBehaviour {
  const behaviour: DpdkBehaviour = { readyLine: 'Port 0: link up', failStart: false };
  world.runner.onSpawn(name, (proc, argv) => {
    void (async () => {
      if (behaviour.failStart) return proc.exit(1);
      const pf = valueAfter(argv, '-a') ?? '';
      const fromArgv = argv.find((a) => a.startsWith('--vfio-vf-token='))?.split('=')[1];
      const file = argv.find((a) => a.startsWith('--vfio-vf-token-file='))?.split('=')[1];
      const token = fromArgv ?? (file === undefined ? undefined : (await readFile(file, 'utf8')).trim());
      try {
        const handle = await world.sim.vfio.openDevice(token === undefined ? pf : `${pf} vf_token=${token}`);
        proc.on('exit', () => void world.sim.vfio.closeDevice(handle));
        proc.print(`EAL: Probe PCI driver: net_e1000_igb (8086:10c9) device: ${pf}`);
        proc.print(behaviour.readyLine);
      } catch (err) {
        proc.printError(`EAL: cannot open ${pf}: ${errnoOf(err)}`);
        proc.exit(1);
      }
    })();
  });
  return behaviour;
}

export interface FecBehaviour {
  /** ok: configures and daemonizes; config-fails: logs the failure and exits 255; no-daemon: configures, then dies. */
  outcome: 'ok' | 'config-fails' | 'no-daemon';
}

export interface FecDaemon {
  readonly pid: number;
  readonly argv: readonly string[];
  readonly handle: number;
  readonly socket: string;
}

/**
 * pf_bb_config and pgrep. Like the real one, it opens the PF without a token, sets the token with
 * VFIO_DEVICE_FEATURE, logs to <logs>/pf_bb_cfg_<bdf>.log and leaves a daemon with a command socket
 * that exits on SIGTERM.
 */
export function installPfBbConfig(
  world: World,
  dirs: { logs: string; sockets: string },
): { behaviour: FecBehaviour; daemons: Map<string, FecDaemon> } {
  const behaviour: FecBehaviour = { outcome: 'ok' };
  const daemons = new Map<string, FecDaemon>();
  world.runner.onRun('pf_bb_config', async (argv) => {
    const device = argv[1] ?? '';
    const pf = valueAfter(argv, '-p') ?? '';
    const token = valueAfter(argv, '-v') ?? '';
    const log = path.join(dirs.logs, `pf_bb_cfg_${pf}.log`);
    const stamp = 'Mon Nov 24 01:00:00 2025';
    if (behaviour.outcome === 'config-fails') {
      await appendFile(
        log,
        `${stamp}:ERR:Queue Groups exceed the device limit\n${stamp}:ERR:${device} PF [${pf}] configuration failed!\n`,
      );
      return { code: 255, stdout: `== pf_bb_config Version ==\n` };
    }
    let handle: number;
    try {
      handle = await world.sim.vfio.openDevice(pf);
      await world.sim.vfio.setVfToken(handle, token);
    } catch (err) {
      await appendFile(log, `${stamp}:ERR:device(${device}) open failed (${errnoOf(err)})\n`);
      return { code: 255 };
    }
    await appendFile(
      log,
      `${stamp}:INFO:${device} PF [${pf}] configuration complete!\n${stamp}:INFO:Running in daemon mode for VFIO VF token\n`,
    );
    if (behaviour.outcome === 'no-daemon') {
      await world.sim.vfio.closeDevice(handle);
    } else {
      const socket = path.join(dirs.sockets, `pf_bb_config.${pf}.sock`);
      await writeFile(socket, '');
      const daemon = { pid: world.runner.allocatePid(), argv, handle, socket };
      daemons.set(pf, daemon);
      world.runner.addExternal(daemon.pid, () => endDaemon(world, daemons, pf, { removeSocket: true }));
    }
    return { code: 0, stdout: `== pf_bb_config Version ==\nLog file = ${log}\n` };
  });
  world.runner.onRun('pgrep', (argv) => {
    const pattern = new RegExp(argv[2] ?? '^$');
    const pids = [...daemons.values()].filter((d) => pattern.test(d.argv.join(' '))).map((d) => d.pid);
    return pids.length === 0 ? { code: 1 } : { code: 0, stdout: pids.map((p) => `${p}\n`).join('') };
  });
  return { behaviour, daemons };
}

/** The daemon goes away as it does on SIGTERM (socket removed) or in a crash (socket left behind). */
export function endDaemon(
  world: World,
  daemons: Map<string, FecDaemon>,
  pf: string,
  how: { removeSocket: boolean },
): void {
  const daemon = daemons.get(pf);
  if (!daemon) return;
  daemons.delete(pf);
  world.runner.removeExternal(daemon.pid);
  void world.sim.vfio.closeDevice(daemon.handle);
  if (how.removeSocket) void rm(daemon.socket, { force: true });
}

export interface HolderBehaviour {
  /** Answer set-token with this errno instead of setting the token. */
  refuseSetToken: string | null;
  /** Report not ready with this errno (as when the IOMMU group is not viable) and exit 1. */
  refuseReady: string | null;
}

/** vfbroker's PF holder, to the protocol agreed with src/pfholder. */
export function installHolder(world: World): { behaviour: HolderBehaviour; running: () => FakeProcess[] } {
  const behaviour: HolderBehaviour = { refuseSetToken: null, refuseReady: null };
  world.runner.onSpawn(path.basename(process.execPath), (proc, argv) => {
    void (async () => {
      const pf = (valueAfter(argv, '--pf') ?? '') as PciAddress;
      const driver = (await world.sim.exists(pf)) ? await world.sim.driver(pf) : null;
      if (driver !== 'vfio-pci' || behaviour.refuseReady !== null) {
        const errno = behaviour.refuseReady ?? 'ENODEV';
        const message =
          driver === 'vfio-pci' ? 'IOMMU group 3 is not viable' : `${pf} is not bound to vfio-pci`;
        proc.print(JSON.stringify({ ready: false, errno, message }));
        return proc.exit(1);
      }
      let handle: number | null = null;
      let tokenSet = false;
      proc.on('exit', () => void (handle === null ? undefined : world.sim.vfio.closeDevice(handle)));
      proc.onInput((data) => {
        void (async () => {
          for (const line of data.split('\n').filter((l) => l !== '')) {
            const request = JSON.parse(line) as { op: string; token?: string };
            if (request.op === 'status') {
              proc.print(JSON.stringify({ ok: true, pf, open: handle !== null, tokenSet }));
            } else if (request.op === 'set-token') {
              if (behaviour.refuseSetToken !== null) {
                proc.print(
                  JSON.stringify({
                    ok: false,
                    errno: behaviour.refuseSetToken,
                    message: 'VFIO_DEVICE_FEATURE refused',
                  }),
                );
                continue;
              }
              try {
                handle ??= await world.sim.vfio.openDevice(pf);
                await world.sim.vfio.setVfToken(handle, request.token ?? '');
                tokenSet = true;
                proc.print(JSON.stringify({ ok: true }));
              } catch (err) {
                proc.print(
                  JSON.stringify({ ok: false, errno: errnoOf(err), message: 'cannot set the VF token' }),
                );
              }
            }
          }
        })();
      });
      proc.print(JSON.stringify({ ready: true, pf }));
    })();
  });
  return { behaviour, running: () => world.runner.processes.filter((p) => p.exitStatus === null) };
}

export interface MellanoxCard {
  /** What mstconfig reports (`world.runner.forget('mstconfig')` uninstalls it). */
  firmware: { enabled: boolean; numVfs: number };
  eswitch: 'legacy' | 'switchdev';
  readonly netdev: string;
  readonly vfs: Map<number, { mac: string; vlan: number; trust: boolean; spoofchk: boolean }>;
}

/** mstconfig, devlink and ip for one ConnectX PF. */
export function installMellanoxTools(world: World, pf: PciAddress): MellanoxCard {
  const card: MellanoxCard = {
    firmware: { enabled: true, numVfs: 8 },
    eswitch: 'legacy',
    netdev: 'enp94s0f0np0',
    vfs: new Map(),
  };
  world.runner.onRun('mstconfig', () => {
    const { enabled, numVfs } = card.firmware;
    return {
      stdout: `\nDevice #1:\n----------\n\nDevice type:    ConnectX5\nDevice:         ${pf}\n\nConfigurations:                              Next Boot\n         SRIOV_EN                            ${enabled ? 'True(1)' : 'False(0)'}\n         NUM_OF_VFS                          ${numVfs}\n`,
    };
  });
  world.runner.onRun('devlink', async (argv) => {
    if (argv.includes('show'))
      return {
        stdout: JSON.stringify({
          dev: { [`pci/${pf}`]: { mode: card.eswitch, 'inline-mode': 'none', 'encap-mode': 'basic' } },
        }),
      };
    if ((await world.sim.readAttribute(pf, 'sriov_numvfs')) !== '0')
      return { code: 1, stderr: 'Error: mlx5_core: Cannot change mode while VFs are enabled.' };
    card.eswitch = argv.at(-1) === 'switchdev' ? 'switchdev' : 'legacy';
    return {};
  });
  world.runner.onRun('ip', async (argv) => {
    if (argv.includes('set')) {
      const vf = Number(valueAfter(argv, 'vf'));
      const current = card.vfs.get(vf) ?? { mac: '00:00:00:00:00:00', vlan: 0, trust: false, spoofchk: true };
      const mac = valueAfter(argv, 'mac');
      const vlan = valueAfter(argv, 'vlan');
      const trust = valueAfter(argv, 'trust');
      const spoofchk = valueAfter(argv, 'spoofchk');
      card.vfs.set(vf, {
        mac: mac ?? current.mac,
        vlan: vlan === undefined ? current.vlan : Number(vlan),
        trust: trust === undefined ? current.trust : trust === 'on',
        spoofchk: spoofchk === undefined ? current.spoofchk : spoofchk === 'on',
      });
      return {};
    }
    if (argv.includes('-d')) {
      return {
        stdout: JSON.stringify([
          { ifname: 'lo' },
          { ifname: card.netdev, parentbus: 'pci', parentdev: pf, phys_port_name: 'p0' },
        ]),
      };
    }
    const count = Number(await world.sim.readAttribute(pf, 'sriov_numvfs'));
    const vfinfo = Array.from({ length: count }, (_, vf) => {
      const s = card.vfs.get(vf) ?? { mac: '00:00:00:00:00:00', vlan: 0, trust: false, spoofchk: true };
      return {
        vf,
        address: s.mac,
        ...(s.vlan === 0 ? {} : { vlan_list: [{ vlan: s.vlan }] }),
        spoofchk: s.spoofchk,
        trust: s.trust,
      };
    });
    return { stdout: JSON.stringify([{ ifname: card.netdev, vfinfo_list: vfinfo }]) };
  });
  return card;
}

/**
 * Checks `guest-definition`, `guest-token` and `guest-iommufd` (`--guest`): the guest's persistent
 * definition presents a vf-token for each VF that needs one, through a backend that passes it on.
 * Whether a token is the PF's active generation only the broker can judge, and it does so when the
 * libvirt hook asks at the guest's start; asking here would create leases, so the doctor reports
 * presence only.
 */
import type { PciAddress } from '../../pci/address.js';
import { VFIO_PCI } from '../../plugins/lifecycle/vfio.js';
import type { Sysfs } from '../../sysfs/sysfs.js';
import type { DoctorContext } from '../context.js';
import { findings, type Finding } from '../finding.js';
import type { GuestDevice, GuestView } from '../guest.js';
import { atLeast } from '../version.js';

export function checkGuestDefinition(ctx: DoctorContext): Finding | null {
  const guest = ctx.guest;
  if (guest === null) return null;
  const f = findings('guest-definition', guest.name);
  if ('error' in guest) {
    return f(
      'fail',
      guest.error.message,
      'the definition says which VFs the guest uses and which tokens it presents for them',
      guest.error.hint,
    );
  }
  const n = guest.view.devices.length;
  return f('ok', `guest ${guest.name} (${guest.view.uuid}) passes ${n} PCI device(s) through`);
}

export async function checkGuestTokens(ctx: DoctorContext): Promise<Finding[]> {
  const view = guestView(ctx);
  if (view === null) return [];
  const out: Finding[] = [];
  for (const device of await tokenDevices(ctx.env.sysfs, view)) out.push(tokenFinding(view, device));
  return out;
}

function tokenFinding(guest: GuestView, device: GuestDevice): Finding {
  const f = findings('guest-token', device.address ?? guest.name);
  const sync = `vfbroker guest sync ${guest.name}`;
  const missing =
    'QEMU would open the VF without a token and the kernel would refuse it (EACCES); the libvirt hook refuses the start before that (token-missing)';
  if (device.address === null) {
    return f(
      'skip',
      `guest ${guest.name} takes a VF from network ${device.network ?? '(unnamed)'} only when it starts`,
      'the libvirt hook checks that VF’s token when libvirt has chosen it',
    );
  }
  if (device.alias === null) {
    return f(
      'fail',
      `VF ${device.address} in guest ${guest.name} has no alias, so no vf-token can be attached to it`,
      missing,
      sync,
    );
  }
  if (!device.hasToken) {
    return f(
      'fail',
      `guest ${guest.name} presents no vf-token for VF ${device.address} (alias ${device.alias})`,
      missing,
      sync,
    );
  }
  return f(
    'ok',
    `guest ${guest.name} presents a vf-token for VF ${device.address} (alias ${device.alias})`,
    `only the broker can tell whether it is the PF’s active generation: the libvirt hook checks it at virsh start ${guest.name}; ` +
      'the token reaches QEMU through <qemu:override>, which taints the domain and does not apply to a VF hot-plugged later',
  );
}

export async function checkGuestIommufd(ctx: DoctorContext): Promise<Finding[]> {
  const view = guestView(ctx);
  if (view === null) return [];
  const devices = (await tokenDevices(ctx.env.sysfs, view)).filter(
    (d): d is GuestDevice & { readonly address: PciAddress } => d.address !== null,
  );
  if (devices.length === 0) return [];
  const iommufd = devices.filter((d) => d.iommufd);
  if (iommufd.length === 0) {
    return [
      findings('guest-iommufd', view.name)(
        'ok',
        `guest ${view.name} opens its VFs through VFIO groups, where QEMU passes vf-token`,
      ),
    ];
  }
  // From 6.17 the kernel wants the token on the cdev path too, which QEMU's iommufd backend never sends.
  const refused = ctx.kernel.version !== null && atLeast(ctx.kernel.version, 6, 17);
  return iommufd.map((d) =>
    findings('guest-iommufd', d.address)(
      refused ? 'fail' : 'warn',
      `VF ${d.address} in guest ${view.name} uses QEMU's iommufd backend (<driver iommufd='yes'/>)`,
      refused
        ? 'the iommufd backend ignores vf-token, and from Linux 6.17 the kernel checks the token on that path: the VF open is refused (EACCES)'
        : 'the iommufd backend ignores vf-token, and Linux 6.6 to 6.16 check no token on that path: the VF opens, but without the token’s protection',
      `virsh edit ${view.name}: remove iommufd='yes' from the device's <driver/>, so that QEMU uses the VFIO group backend, which passes vf-token`,
    ),
  );
}

function guestView(ctx: DoctorContext): GuestView | null {
  return ctx.guest !== null && 'view' in ctx.guest ? ctx.guest.view : null;
}

/** The guest's devices that need a VF token: VFs of a PF on vfio-pci, and VFs a network picks at start. */
async function tokenDevices(sysfs: Sysfs, guest: GuestView): Promise<GuestDevice[]> {
  const out: GuestDevice[] = [];
  for (const device of guest.devices) {
    if (
      device.address === null ? device.kind === 'interface-network' : await needsToken(sysfs, device.address)
    ) {
      out.push(device);
    }
  }
  return out;
}

async function needsToken(sysfs: Sysfs, address: PciAddress): Promise<boolean> {
  if (!(await sysfs.exists(address))) return false;
  const pf = await sysfs.physfn(address);
  return pf !== null && (await sysfs.driver(pf)) === VFIO_PCI;
}

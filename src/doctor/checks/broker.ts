/**
 * Checks `broker`, `store` and `pf-token`: what the broker says about itself, its token store and
 * each PF. The CLI never reads Vault itself: the store's health and the active token generation
 * come from the broker's Status and ListPfs, which carry no token.
 */
import type { PfSummary } from '../../broker/api.js';
import type { PciAddress } from '../../pci/address.js';
import { brokerPf, configuredPf, type DoctorContext } from '../context.js';
import { findings, type Finding, type FindingMaker } from '../finding.js';
import { JOURNAL, RESTART, pfStatus, pfUp } from './commands.js';

const NOT_REACHABLE = 'not checked: the broker is not reachable';

export function checkBroker(ctx: DoctorContext): Finding {
  const f = findings('broker', null);
  const broker = ctx.broker;
  if (!broker.reachable) {
    return f(
      'fail',
      `the broker is not reachable: ${broker.error.message}`,
      'the broker keeps the VF tokens: without it the libvirt hook refuses every guest with a VF that needs one, and `vfbroker token get` fails',
      `systemctl status vfbroker (start it with systemctl start vfbroker; its log: ${JOURNAL})`,
    );
  }
  const s = broker.status;
  return f('ok', `broker ${s.version} serves host ${s.hostId}: ${s.pfs} PF(s), ${s.leases} lease(s)`);
}

export function checkStore(ctx: DoctorContext): Finding {
  const f = findings('store', null);
  if (!ctx.broker.reachable) return f('skip', NOT_REACHABLE);
  const store = ctx.config?.store;
  const where =
    store === undefined
      ? ''
      : store.type === 'vault'
        ? ` (Vault at ${store.address})`
        : ` (files in ${store.directory})`;
  if (ctx.broker.status.storeReachable) return f('ok', `the broker reaches its token store${where}`);
  const check =
    store?.type === 'vault'
      ? `VAULT_ADDR=${store.address} vault status (sealed: vault operator unseal)`
      : store?.type === 'file'
        ? `ls -ld ${store.directory} (root-owned, mode 0700)`
        : 'check the store named in broker.yaml';
  return f(
    'fail',
    `the broker cannot reach its token store${where}`,
    'the broker reads a PF’s token from the store once per generation: until it has, it cannot bring the PF up or hand the token out, and no rotation can be recorded',
    `${check}; the broker’s log says what failed: ${JOURNAL}`,
  );
}

export function checkPfToken(ctx: DoctorContext, pf: PciAddress): Finding {
  const f = findings('pf-token', pf);
  if (!ctx.broker.reachable) return f('skip', NOT_REACHABLE);
  const summary = brokerPf(ctx, pf);
  if (summary === undefined) {
    if (configuredPf(ctx, pf) === undefined) return f('skip', `vfbroker does not manage PF ${pf}`);
    return f(
      'fail',
      `the broker does not manage PF ${pf}, although ${ctx.configPath} lists it`,
      'the broker reads broker.yaml only when it starts: it holds no token for this PF and answers unknown-vf for its VFs',
      RESTART,
    );
  }
  if (!summary.needsToken) return f('ok', `PF ${pf} needs no VF token (plugin ${summary.plugin})`);
  return stateFinding(f, pf, summary);
}

function stateFinding(f: FindingMaker, pf: PciAddress, p: PfSummary): Finding {
  switch (p.state) {
    case 'up':
      if (p.generation > 0) {
        return f(
          'ok',
          `PF ${pf} is up: its PF driver holds token generation ${p.generation} (rotation ${p.rotationMode})`,
        );
      }
      return f(
        'fail',
        `PF ${pf} is up without a token generation`,
        'the kernel refuses every VF open until the PF driver sets a token the broker can hand out',
        `${pfStatus(pf)} and ${JOURNAL} say why; ${pfUp(pf)} brings it up again`,
      );
    case 'rotating':
      return f(
        'warn',
        `PF ${pf} is rotating its token (generation ${p.generation} active, ${p.leases} lease(s))`,
        'until the rotation ends, new guest starts on this PF are held or refused with `rotating`; running guests keep their VFs',
        'wait for it to finish: vfbroker token status',
      );
    case 'degraded':
      return f(
        'fail',
        `PF ${pf} is degraded (generation ${p.generation})`,
        'part of its bring-up is not done, so its PF driver may not hold the token: VF opens fail with EACCES',
        `${pfStatus(pf)} shows which step is not done (${JOURNAL} says why); ${pfUp(pf)} retries it`,
      );
    case 'down':
      return f(
        'fail',
        `PF ${pf} is down: no PF driver holds its token`,
        'vfio-pci gives a PF a random token at bind; until the PF driver sets the broker’s, the kernel refuses every VF open (EACCES)',
        `${pfUp(pf)} brings it up; ${JOURNAL} says why it went down`,
      );
  }
}

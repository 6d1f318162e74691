/** Check `config`: broker.yaml can be read, since it names the PFs vfbroker manages. */
import type { DoctorContext } from '../context.js';
import { findings, type Finding } from '../finding.js';

export function checkConfig(ctx: DoctorContext): Finding {
  const f = findings('config', null);
  const outcome = ctx.env.config;
  if ('error' in outcome) {
    return f(
      'fail',
      outcome.error.message,
      'broker.yaml lists the PFs whose VF tokens vfbroker keeps; the broker does not start without it',
      outcome.error.hint,
    );
  }
  const n = outcome.config.pfs.length;
  return f('ok', `${outcome.path} configures ${n} PF${n === 1 ? '' : 's'}`);
}

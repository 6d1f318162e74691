/**
 * Entry point of vfbroker's PF holder: `node main.js --pf <DDDD:BB:DD.F>`.
 *
 * Prints one ready line once the PF checks out, then answers JSON-line requests on stdin (see
 * protocol.ts) until stdin closes or SIGTERM arrives; then it closes its VFIO fds and exits 0. The
 * token only ever arrives on stdin: never in argv or the environment, where /proc would show it.
 * stdout carries the protocol only; pino's lines go to stderr.
 */
import { destination } from 'pino';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createLogger, type Logger } from '../log.js';
import { VfbError } from '../errors.js';
import { parsePciAddress, type PciAddress } from '../pci/address.js';
import { RealSysfs } from '../sysfs/real.js';
import { PfHolder } from './holder.js';
import { checkPf, type ReadyPf } from './preflight.js';
import { encodeLine, failureOf, type HolderReady } from './protocol.js';
import { serve } from './serve.js';

async function main(): Promise<number> {
  // Synchronous stderr: the last lines before an exit must not be lost in a buffer.
  let log: Logger = createLogger({
    destination: destination({ dest: 2, sync: true }),
    base: { component: 'pfholder' },
  });
  let ready: ReadyPf;
  try {
    const pf = parsePfArgument(process.argv.slice(2));
    log = log.child({ pf });
    ready = await checkPf(new RealSysfs(), pf);
  } catch (err) {
    const failure = failureOf(err);
    log.error({ err, errno: failure.errno }, 'not ready');
    send({ ready: false, ...failure });
    return 1;
  }

  const holder = new PfHolder(ready.pf, ready.iommuGroup, log);
  const stop = (why: string): never => {
    holder.close();
    log.info({ event: 'exit', why }, 'PF holder exiting');
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  // A parent that went away cannot read our replies; there is nobody left to serve.
  process.stdout.on('error', () => stop('stdout closed'));

  send({ ready: true, pf: ready.pf });
  log.info({ event: 'ready', iommuGroup: ready.iommuGroup }, 'PF holder ready');
  await serve(
    createInterface({ input: process.stdin, crlfDelay: Infinity }),
    (line) => process.stdout.write(line),
    ready.pf,
    holder,
    log,
  );
  return stop('stdin closed');
}

function parsePfArgument(args: string[]): PciAddress {
  let pf: string | undefined;
  try {
    pf = parseArgs({ args, options: { pf: { type: 'string' } }, strict: true }).values.pf;
  } catch {
    // parseArgs' own message would quote the unexpected argument; keep argv out of replies and logs.
  }
  if (pf === undefined) throw new VfbError('INVALID_ARGUMENT', 'usage: main.js --pf <DDDD:BB:DD.F>');
  return parsePciAddress(pf);
}

function send(message: HolderReady): void {
  process.stdout.write(encodeLine(message));
}

process.exitCode = await main();

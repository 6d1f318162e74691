/**
 * SetNumVfs as a PF-owning application calls it: its own connection to the bus under its own uid, so
 * the broker sees that uid from the bus (SO_PEERCRED), not the stage's root. Stage 3 runs this with
 * runProgram as the consumer and the stranger; root's calls use setNumVfsAnswer in-process. (The CLI
 * has no command for SetNumVfs: a PF owner is an application, not an operator.)
 *
 *   node owner-call.js BUS_ADDRESS PF COUNT TIMEOUT_MS     prints the answer (setNumVfsAnswer)
 */
import { argv } from 'node:process';
import { fileURLToPath } from 'node:url';
import { BrokerClient } from '../../src/dbus/client.js';
import { isVfbError } from '../../src/errors.js';
import { parsePciAddress, type PciAddress } from '../../src/pci/address.js';

/** This script, for runProgram. */
export const OWNER_CALL_MAIN = fileURLToPath(import.meta.url);

/** SetNumVfs's answer in the words stage 3 compares: `OK`, or the error's code and message. */
export async function setNumVfsAnswer(client: BrokerClient, pf: PciAddress, count: number): Promise<string> {
  try {
    await client.setNumVfs(pf, count);
    return 'OK';
  } catch (err) {
    if (isVfbError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
}

async function main([address, pf, count, timeout]: readonly (string | undefined)[]): Promise<void> {
  if (address === undefined || pf === undefined || count === undefined || timeout === undefined)
    throw new Error('usage: owner-call.js BUS_ADDRESS PF COUNT TIMEOUT_MS');
  const client = await BrokerClient.connect({ address, callTimeoutMs: Number(timeout) });
  try {
    process.stdout.write(`${await setNumVfsAnswer(client, parsePciAddress(pf), Number(count))}\n`);
  } finally {
    client.close();
  }
}

if (argv[1] === OWNER_CALL_MAIN) await main(argv.slice(2));

/**
 * The holder's request loop: one reply line per request line, in order, until the input ends. Requests
 * are handled one at a time (the ioctls are synchronous), so replies can never overtake each other.
 */
import type { Logger } from '../log.js';
import type { PciAddress } from '../pci/address.js';
import type { TokenHolder } from './holder.js';
import { encodeLine, failureOf, parseRequest, type HolderReply } from './protocol.js';

export async function serve(
  lines: AsyncIterable<string>,
  send: (line: string) => void,
  pf: PciAddress,
  holder: TokenHolder,
  log: Logger,
): Promise<void> {
  for await (const line of lines) {
    // A blank line is not a request; answering it would shift every later reply by one.
    if (line.trim() === '') continue;
    send(encodeLine(answer(line, pf, holder, log)));
  }
}

function answer(line: string, pf: PciAddress, holder: TokenHolder, log: Logger): HolderReply {
  try {
    const request = parseRequest(line);
    switch (request.op) {
      case 'set-token':
        holder.setToken(request.token);
        return { ok: true };
      case 'status':
        return { ok: true, pf, ...holder.status() };
    }
  } catch (err) {
    const failure = failureOf(err);
    log.warn({ err, errno: failure.errno }, 'request refused');
    return { ok: false, ...failure };
  }
}

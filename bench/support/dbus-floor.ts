/**
 * The floor under any hook written for Node: a program that only loads node:net, connects to the
 * bus, authenticates, says Hello and pings the broker (org.freedesktop.DBus.Peer.Ping, which the
 * broker's D-Bus adapter answers without any broker work) — one write, as the hook's wire client
 * does, then exit on the third message back (Hello's reply, NameAcquired, Ping's reply: the bus sends
 * the first two before it forwards the Ping). The hook does all of this and more: reads stdin,
 * parses the XML, looks at sysfs, and its broker call makes a lease durable.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUS_NAME, OBJECT_PATH } from '../../src/dbus/protocol.js';
import { FIRST_CALL_SERIAL, handshake } from '../../src/dbus/wire/connection.js';
import { encodeMethodCall, type MethodCall } from '../../src/dbus/wire/message.js';

/** org.freedesktop.DBus.Peer.Ping to the broker: its D-Bus adapter answers it with no broker work. */
export const PEER_PING: MethodCall = {
  destination: BUS_NAME,
  path: OBJECT_PATH,
  interface: 'org.freedesktop.DBus.Peer',
  member: 'Ping',
  signature: '',
  body: [],
};

/** Writes the program into `dir` and returns its path; run it with node, nothing else. */
export function writeDbusFloorProgram(dir: string, socketPath: string): string {
  // The same bytes the hook's wire client writes, Ping in place of PrepareGuest.
  const request = Buffer.concat([handshake(), encodeMethodCall(PEER_PING, FIRST_CALL_SERIAL)]).toString(
    'hex',
  );
  const file = join(dir, 'dbus-floor.cjs');
  writeFileSync(
    file,
    `'use strict';
const socket = require('node:net').createConnection(${JSON.stringify(socketPath)});
socket.on('connect', () => socket.write(Buffer.from('${request}', 'hex')));
socket.on('error', () => process.exit(1));
let inbox = Buffer.alloc(0);
let authed = false;
let messages = 0;
socket.on('data', (chunk) => {
  inbox = Buffer.concat([inbox, chunk]);
  if (!authed) {
    const end = inbox.indexOf('\\r\\n');
    if (end < 0) return;
    if (!inbox.toString('latin1', 0, 3).startsWith('OK ')) process.exit(1);
    authed = true;
    inbox = inbox.subarray(end + 2);
  }
  // A message: 16 bytes, the header fields padded to 8, the body.
  while (inbox.length >= 16) {
    const fields = inbox.readUInt32LE(12);
    const length = 16 + fields + ((8 - (fields % 8)) % 8) + inbox.readUInt32LE(4);
    if (inbox.length < length) return;
    // The third is Ping's: a METHOD_RETURN (2), or the broker was not reached.
    if (++messages === 3) process.exit(inbox[1] === 2 ? 0 : 1);
    inbox = inbox.subarray(length);
  }
});
`,
  );
  return file;
}

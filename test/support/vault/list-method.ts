/**
 * Vault's API uses the HTTP method LIST (node-vault's list() sends it), but Node's HTTP parser
 * (llhttp) only knows a fixed set of methods and drops the connection on any other. This wrapper
 * sits between the TCP socket and node:http and renames a request line's leading "LIST " to
 * "PROPFIND " (a method llhttp knows and no Vault client sends); the server maps PROPFIND back to
 * LIST. Only request starts are rewritten: the server calls expectRequest() just before it answers,
 * and HTTP/1.1 clients (fetch, axios) send the next request on a connection only after reading the
 * whole answer, so the next bytes to arrive begin a request line.
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

export const LIST_ALIAS = 'PROPFIND';

const LIST = Buffer.from('LIST ', 'latin1');
const ALIAS = Buffer.from(`${LIST_ALIAS} `, 'latin1');

export class ListMethodConnection extends Duplex {
  #atRequestStart = true;
  #pending = Buffer.alloc(0);

  constructor(private readonly socket: Socket) {
    super();
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  /** The next byte from the client starts a new request. */
  expectRequest(): void {
    this.#atRequestStart = true;
  }

  #onData(chunk: Buffer): void {
    let out = chunk;
    if (this.#atRequestStart) {
      this.#pending = Buffer.concat([this.#pending, chunk]);
      const head = this.#pending.subarray(0, LIST.length);
      // Wait until there are enough bytes to tell whether the method is LIST.
      if (this.#pending.length < LIST.length && LIST.subarray(0, head.length).equals(head)) return;
      out = head.equals(LIST) ? Buffer.concat([ALIAS, this.#pending.subarray(LIST.length)]) : this.#pending;
      this.#pending = Buffer.alloc(0);
      this.#atRequestStart = false;
    }
    if (!this.push(out)) this.socket.pause();
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy(error ?? undefined);
    callback(error);
  }
}

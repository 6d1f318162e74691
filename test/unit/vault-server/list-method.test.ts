import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { ListMethodConnection } from '../../support/vault/list-method.js';

/** Just enough of a socket for the wrapper: it emits 'data' and is paused, resumed and written to. */
class FakeSocket extends EventEmitter {
  readonly written: string[] = [];
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  write(chunk: Buffer, callback: () => void): boolean {
    this.written.push(chunk.toString('latin1'));
    callback();
    return true;
  }
  end(callback: () => void): this {
    callback();
    return this;
  }
  destroy(): this {
    return this;
  }
}

function wrap(): { socket: FakeSocket; conn: ListMethodConnection; seen: () => Promise<string> } {
  const socket = new FakeSocket();
  const conn = new ListMethodConnection(socket as unknown as Socket);
  const chunks: string[] = [];
  conn.on('data', (chunk: Buffer) => chunks.push(chunk.toString('latin1')));
  // A readable stream delivers what was pushed on a later tick.
  const seen = async (): Promise<string> => {
    await tick();
    return chunks.join('');
  };
  return { socket, conn, seen };
}

const feed = (socket: FakeSocket, ...chunks: string[]): void => {
  for (const c of chunks) socket.emit('data', Buffer.from(c, 'latin1'));
};

describe('vault test server: LIST method rewriting', () => {
  it('renames LIST at the start of a request, even when the method arrives in pieces', async () => {
    const { socket, seen } = wrap();
    feed(socket, 'LI', 'S', 'T /v1/secret/metadata/a HTTP/1.1\r\n\r\n');
    assert.equal(await seen(), 'PROPFIND /v1/secret/metadata/a HTTP/1.1\r\n\r\n');
  });

  it('leaves other methods alone, including ones that start like LIST', async () => {
    const { socket, seen } = wrap();
    feed(socket, 'L', 'OCK /x HTTP/1.1\r\n\r\n');
    assert.equal(await seen(), 'LOCK /x HTTP/1.1\r\n\r\n');
  });

  it('rewrites only where a request starts, not inside a body', async () => {
    const { socket, conn, seen } = wrap();
    feed(socket, 'POST /v1/a HTTP/1.1\r\nContent-Length: 9\r\n\r\n', 'LIST body');
    assert.equal(await seen(), 'POST /v1/a HTTP/1.1\r\nContent-Length: 9\r\n\r\nLIST body');
    conn.expectRequest();
    feed(socket, 'LIST /v1/b HTTP/1.1\r\n\r\n');
    assert.ok((await seen()).endsWith('PROPFIND /v1/b HTTP/1.1\r\n\r\n'));
  });

  it('passes what the server writes straight to the socket', async () => {
    const { socket, conn } = wrap();
    await new Promise<void>((resolve) => conn.write(Buffer.from('HTTP/1.1 200 OK\r\n'), () => resolve()));
    assert.deepEqual(socket.written, ['HTTP/1.1 200 OK\r\n']);
  });
});

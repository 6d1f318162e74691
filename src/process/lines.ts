/**
 * Splits a child's output stream into lines. A line longer than the cap is cut at the cap and the
 * rest of it dropped up to the next newline, so a child that never writes a newline costs at most
 * `maxLength` bytes of memory.
 */
import { StringDecoder } from 'node:string_decoder';

export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private discarding = false;

  constructor(
    private readonly maxLength: number,
    private readonly emit: (line: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    let nl: number;
    while ((nl = text.indexOf('\n')) >= 0) {
      const piece = text.slice(0, nl);
      text = text.slice(nl + 1);
      if (this.discarding) {
        this.discarding = false;
        this.partial = '';
        continue;
      }
      this.emitLine(this.partial + piece);
      this.partial = '';
    }
    if (this.discarding) return;
    this.partial += text;
    if (this.partial.length > this.maxLength) {
      this.emitLine(this.partial);
      this.partial = '';
      this.discarding = true;
    }
  }

  /** Emits what is left when the stream ends without a final newline. */
  end(): void {
    const rest = this.partial + this.decoder.end();
    this.partial = '';
    if (!this.discarding && rest !== '') this.emitLine(rest);
    this.discarding = false;
  }

  private emitLine(line: string): void {
    this.emit((line.endsWith('\r') ? line.slice(0, -1) : line).slice(0, this.maxLength));
  }
}

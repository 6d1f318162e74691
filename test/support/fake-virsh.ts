/**
 * virsh as vfbroker uses it, over an in-memory set of persistent definitions: `list --all --name`,
 * `dumpxml --domain D --inactive`, `define --file /dev/stdin` (the definition's <name> decides which
 * guest it replaces, as libvirt's does), `domuuid --domain D`. An unknown domain answers with
 * virsh's own error text. Plugs into FakeRunner.
 */
import type { FakeResult, FakeRunner } from './fake-runner.js';

export class FakeVirsh {
  readonly definitions = new Map<string, string>();
  defines = 0;

  install(runner: FakeRunner): this {
    runner.onRun('virsh', (argv, input) => this.answer(argv.slice(3), input));
    // `define` goes through `sh -c 'cat | exec "$0" "$@"' virsh …`, so its stdin is a pipe.
    runner.onRun('sh', (argv, input) => {
      if (argv[1] !== '-c' || argv[2] !== 'cat | exec "$0" "$@"' || argv[3] !== 'virsh') {
        return { code: 2, stderr: 'sh: not the command vfbroker runs\n' };
      }
      return this.answer(argv.slice(6), input);
    });
    return this;
  }

  private answer(args: readonly string[], input: string | undefined): FakeResult {
    const command = args[0] ?? '';
    const domain = args[args.indexOf('--domain') + 1] ?? '';
    const xml = this.definitions.get(domain);
    switch (command) {
      case 'list':
        return { stdout: [...this.definitions.keys()].map((n) => `${n}\n`).join('') + '\n' };
      case 'dumpxml':
        return xml === undefined ? noDomain(domain) : { stdout: xml };
      case 'domuuid':
        return xml === undefined
          ? noDomain(domain)
          : { stdout: `${/<uuid>([^<]+)<\/uuid>/.exec(xml)?.[1] ?? ''}\n` };
      case 'define': {
        const name = /<name>([^<]+)<\/name>/.exec(input ?? '')?.[1];
        if (name === undefined)
          return { code: 1, stderr: 'error: Failed to define domain from /dev/stdin\n' };
        this.definitions.set(name, input ?? '');
        this.defines++;
        return { stdout: `Domain '${name}' defined from /dev/stdin\n` };
      }
      default:
        return { code: 1, stderr: `error: unknown command: '${command}'\n` };
    }
  }
}

function noDomain(domain: string): FakeResult {
  return { code: 1, stderr: `error: failed to get domain '${domain}'\n` };
}

/**
 * The few `virsh` commands `vfbroker guest attach|sync|detach` needs, through the process runner.
 * Never used from inside the libvirt hook: calling libvirt from a hook deadlocks the daemon.
 *
 * Domains are always passed as `--domain <name>` so a name starting with `-` cannot be read as an
 * option. A definition carries VF tokens, so it goes to `virsh define` on stdin (`/dev/stdin`), never
 * through a file, and nothing virsh prints about it reaches an error with a token in it.
 */
import { VfbError } from '../errors.js';
import { redactSecrets, type Argv } from '../process/argv.js';
import { requireSuccess, type ProcessRunner, type RunResult } from '../process/runner.js';

export interface VirshOptions {
  /** `virsh -c URI`; qemu:///system unless given. */
  readonly uri?: string;
  /** Per command; virsh waits on libvirtd, which may be busy starting guests. */
  readonly timeoutMs?: number;
  /** The virsh executable, found on PATH by the runner unless absolute. */
  readonly command?: string;
}

const DEFAULT_URI = 'qemu:///system';
const DEFAULT_TIMEOUT_MS = 30_000;
// virsh's words for an unknown domain (virsh-util.c virshLookupDomainBy, VIR_ERR_NO_DOMAIN).
const NO_DOMAIN = /failed to get domain|Domain not found/;

export class Virsh {
  private readonly uri: string;
  private readonly timeoutMs: number;
  private readonly command: string;

  constructor(
    private readonly runner: ProcessRunner,
    options: VirshOptions = {},
  ) {
    this.uri = options.uri ?? DEFAULT_URI;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.command = options.command ?? 'virsh';
  }

  /** `virsh -c URI dumpxml --domain DOM --inactive`: the persistent definition (with its tokens). */
  async dumpXmlInactive(domain: string): Promise<string> {
    return (await this.run(['dumpxml', '--domain', domain, '--inactive'], domain)).stdout;
  }

  /**
   * `cat | virsh -c URI define --file /dev/stdin < XML`. `secrets` (the tokens in the XML) are scrubbed from
   * anything virsh prints before it becomes part of an error.
   */
  async define(xml: string, secrets: readonly string[]): Promise<void> {
    // Node gives a child a socket, not a pipe, as stdin, and virsh cannot open /dev/stdin on a
    // socket (ENXIO): `cat` in between makes it a pipe. The arguments reach virsh as "$@", never
    // through the shell's parser, and the XML never touches a file.
    const argv: Argv = ['sh', '-c', 'cat | exec "$0" "$@"', ...this.argv(['define', '--file', '/dev/stdin'])];
    const result = await this.runner.run(argv, { timeoutMs: this.timeoutMs, input: xml });
    requireSuccess(argv, {
      ...result,
      stdout: redactSecrets(result.stdout, secrets),
      stderr: redactSecrets(result.stderr, secrets),
    });
  }

  /** `virsh -c URI domuuid --domain DOM`. */
  async domUuid(domain: string): Promise<string> {
    const uuid = (await this.run(['domuuid', '--domain', domain], domain)).stdout.trim();
    if (!/^[0-9a-f-]{36}$/i.test(uuid)) {
      throw new VfbError(
        'UNAVAILABLE',
        `virsh domuuid printed no UUID for guest ${JSON.stringify(domain.slice(0, 64))}`,
      );
    }
    return uuid.toLowerCase();
  }

  /** `virsh -c URI list --all --name`: every defined or running guest's name. */
  async listAll(): Promise<string[]> {
    const { stdout } = await this.run(['list', '--all', '--name']);
    return stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
  }

  /** `virsh -c URI list --uuid`: the UUIDs of the guests running now, lower case. */
  async runningUuids(): Promise<Set<string>> {
    const { stdout } = await this.run(['list', '--uuid']);
    return new Set(
      stdout
        .split('\n')
        .map((l) => l.trim().toLowerCase())
        .filter((l) => /^[0-9a-f-]{36}$/.test(l)),
    );
  }

  private argv(args: readonly string[]): Argv {
    return [this.command, '-c', this.uri, ...args];
  }

  private async run(args: readonly string[], domain?: string): Promise<RunResult> {
    const argv = this.argv(args);
    const result = await this.runner.run(argv, { timeoutMs: this.timeoutMs });
    if (result.code !== 0 && domain !== undefined && NO_DOMAIN.test(result.stderr)) {
      throw new VfbError('NOT_FOUND', `libvirt has no guest named ${JSON.stringify(domain.slice(0, 64))}`, {
        hint: '`virsh list --all` shows the guests libvirt knows',
      });
    }
    return requireSuccess(argv, result);
  }
}

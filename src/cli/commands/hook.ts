import type { Command } from 'commander';

export function registerHook(program: Command): void {
  const hook = program
    .command('hook')
    .description('the VM manager hooks (what the installed hooks run)')
    .addHelpText(
      'after',
      `
hook qemu takes every argument after it as libvirt's, --help included (the hook ignores an op it
does not know and exits 0), so its reference is in docs/cli.md. vfbroker install puts the bundled
hook in /etc/libvirt/hooks/qemu.d/vfbroker.

Example:
  vfbroker hook qemu vdu-1 prepare begin - < /etc/libvirt/qemu/vdu-1.xml`,
    );
  hook
    .command('qemu')
    .description('libvirt’s qemu hook: gate a guest start on its VFs’ tokens')
    .argument('[argv...]', 'what libvirt passes: <domain> <op> <subop> <extra>')
    .allowUnknownOption()
    .helpOption(false)
    .addHelpText(
      'after',
      `
Reads the domain XML on stdin. At prepare (and start, for VFs a hostdev network chose) it asks the
broker about every VF of a vfio-pci PF and exits 1 with one stderr line per refused VF; a guest
without such VFs never depends on the broker. Never fails at started, stopped or release.
The installed hook (/etc/libvirt/hooks/qemu.d/vfbroker) is a bundled copy of this.
Exit status: 0 when the guest may start (and always at started, stopped and release), 1 when a VF
is refused, and at prepare and start the error's status when the broker could not be asked (69
unreachable, 75 no answer within hook.brokerTimeoutMs) or the XML could not be read (64). It has
no --json: libvirt shows its stderr lines in the error it reports.

Example:
  vfbroker hook qemu vdu-1 prepare begin - < /etc/libvirt/qemu/vdu-1.xml`,
    )
    .action(async (argv: string[], _opts, cmd: Command) => {
      // libvirt never passes --help alone; a person asking for help should not wait on stdin.
      if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
        cmd.outputHelp();
        return;
      }
      const { hookProcess } = await import('../../hooks/hook-process.js');
      // Exit at once, as the installed hook does: stdin may never close.
      process.exit(await hookProcess(argv));
    });
}

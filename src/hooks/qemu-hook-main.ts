/**
 * The installed hook's entry point, bundled by scripts/build-hook.mjs into one file that libvirt
 * runs as /etc/libvirt/hooks/qemu.d/vfbroker.
 *
 * It exits explicitly, so an open bus socket or a stdin that libvirt never closes cannot keep the
 * process (and with it libvirt) waiting past the deadline.
 */
import { hookProcess } from './hook-process.js';

// CommonJS once bundled, so no top-level await.
void hookProcess(process.argv.slice(2)).then((code) => process.exit(code));

/**
 * Which Debian package provides a command vfbroker runs, so that "not found" says what to install
 * (the same table is in the plugin READMEs).
 */
import { VfbError } from '../errors.js';

const PROVIDERS: Readonly<Record<string, string>> = {
  ip: 'install the Debian package iproute2',
  'dbus-daemon': 'install the Debian package dbus-daemon',
  devlink: 'install the Debian package iproute2',
  mstconfig: 'install the Debian package mstflint',
  'dpdk-testpmd': 'install the Debian package dpdk',
  pgrep: 'install the Debian package procps',
  pf_bb_config: 'it is not packaged: build it from https://github.com/intel/pf-bb-config and put it in PATH',
  node: 'install the Debian package nodejs',
};

function providerOf(command: string): string | null {
  return PROVIDERS[command] ?? null;
}

export function commandNotFound(command: string, where: string): VfbError {
  const fix = providerOf(command.slice(command.lastIndexOf('/') + 1));
  return new VfbError('NOT_FOUND', `command ${command} not found (${where})${fix ? `: ${fix}` : ''}`, {
    hint: fix ?? 'install the program or give its absolute path in /etc/vfbroker/broker.yaml',
    details: { command },
  });
}

/**
 * libvirt's status file of an active domain: what its qemu driver keeps in its state directory
 * (/run/libvirt/qemu/<name>.xml for the system daemon) from QEMU's start until the domain stops,
 * when it deletes it. The root element records the domain's state and QEMU's process id; after the
 * driver's private elements (monitor, vcpus, qemuCaps, …) comes the live `<domain>`:
 *
 *   <domstatus state='running' reason='booted' pid='195139'>
 *     <monitor path='…/monitor.sock' type='unix'/> … <domain type='kvm' id='1'><name>…<uuid>…
 *
 * (libvirt src/conf/domain_conf.c, virDomainObjFormat; tests/qemustatusxml2xmldata/ holds samples.)
 * The file is untrusted input like any XML here, so it goes through the hardened parser (no DTD,
 * size, depth and element caps) and yields only the few facts vfbroker uses.
 */
import { VfbError } from '../errors.js';
import { domainIdentity } from './domain-xml.js';
import { attr, firstChild, parseXml, type XmlLimits } from './xml-tree.js';

export interface DomainStatus {
  /** libvirt's state name: running, paused, shutdown, crashed, pmsuspended, … */
  readonly state: string;
  /** The domain's QEMU process; 0 when it has none. */
  readonly pid: number;
  readonly uuid: string;
  readonly name: string;
}

/** The largest pid Linux hands out (PID_MAX_LIMIT, 2^22). */
const PID_MAX = 4_194_304;

export function readDomainStatusXml(source: string, what: string, limits?: XmlLimits): DomainStatus {
  const doc = parseXml(source, what, limits);
  const root = doc.root;
  if (root.local !== 'domstatus' || root.uri !== '') {
    throw invalid(what, `has root element <${root.name}> instead of <domstatus>`);
  }
  const state = attr(root, 'state') ?? '';
  if (!/^[a-z]{1,32}$/.test(state)) throw invalid(what, 'has no state, or a malformed one');
  const pidText = attr(root, 'pid') ?? '';
  // libvirt prints the pid with %lld: plain decimal digits.
  const pid = /^[0-9]{1,7}$/.test(pidText) ? Number(pidText) : NaN;
  if (!(pid <= PID_MAX)) {
    throw invalid(what, pidText === '' ? 'has no pid' : 'has a malformed pid');
  }
  const domain = firstChild(root, 'domain');
  if (!domain) throw invalid(what, 'has no <domain>');
  return { state, pid, ...domainIdentity({ source: doc.source, root: domain }, what) };
}

function invalid(what: string, why: string): VfbError {
  return new VfbError('INVALID_ARGUMENT', `${what} ${why}`);
}

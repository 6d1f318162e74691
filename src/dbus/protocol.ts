/**
 * The broker's D-Bus contract, written once: names, member signatures and the typed fields of the
 * a{sv} records. The service (src/broker/dbus/) dispatches and introspects from these tables and the
 * client (client.ts) calls and decodes from them, so the two sides cannot drift apart.
 *
 * Shell equivalent of a call: `busctl call org.vfbroker.Broker1 /org/vfbroker/Broker1
 * org.vfbroker.Broker1 Status`.
 */
import type { BrokerStatus, PfState, PfSummary, RotationState } from '../broker/api.js';

export const BUS_NAME = 'org.vfbroker.Broker1';
export const OBJECT_PATH = '/org/vfbroker/Broker1';
export const INTERFACE = 'org.vfbroker.Broker1';

export interface ArgSpec {
  readonly name: string;
  /** D-Bus type signature of this argument. */
  readonly type: string;
}

export interface MemberSpec {
  readonly in: readonly ArgSpec[];
  readonly out: readonly ArgSpec[];
}

export const METHODS = {
  PrepareGuest: {
    in: [
      { name: 'uuid', type: 's' },
      { name: 'name', type: 's' },
      // (VF address, vf-token presented by the guest definition or "")
      { name: 'devices', type: 'a(ss)' },
    ],
    // (VF address, verdict, one-line message)
    out: [{ name: 'verdicts', type: 'a(sss)' }],
  },
  GuestStarted: { in: [{ name: 'uuid', type: 's' }], out: [] },
  ReleaseGuest: {
    in: [
      { name: 'uuid', type: 's' },
      { name: 'reason', type: 's' },
    ],
    out: [],
  },
  GetToken: { in: [{ name: 'address', type: 's' }], out: [{ name: 'token', type: 's' }] },
  Rotate: { in: [{ name: 'pf', type: 's' }], out: [{ name: 'state', type: 's' }] },
  ListPfs: { in: [], out: [{ name: 'pfs', type: 'aa{sv}' }] },
  Status: { in: [], out: [{ name: 'status', type: 'a{sv}' }] },
  SetNumVfs: {
    in: [
      { name: 'pf', type: 's' },
      { name: 'count', type: 'u' },
    ],
    out: [],
  },
  // The plan, as text: what up changed (or, with dryRun, would change).
  PfUp: {
    in: [
      { name: 'pf', type: 's' },
      { name: 'dryRun', type: 'b' },
    ],
    out: [{ name: 'plan', type: 's' }],
  },
  PfDown: {
    in: [
      { name: 'pf', type: 's' },
      { name: 'release', type: 'b' },
    ],
    out: [],
  },
  // A JSON document: PfStatus (src/plugins/status.ts), each life-cycle step and whether it is done.
  PfStatus: { in: [{ name: 'pf', type: 's' }], out: [{ name: 'status', type: 's' }] },
} as const satisfies Record<string, MemberSpec>;

export type MethodName = keyof typeof METHODS;

export const SIGNALS = {
  TokenRotated: [
    { name: 'pf', type: 's' },
    { name: 'generation', type: 'u' },
  ],
  GuestRefused: [
    { name: 'uuid', type: 's' },
    { name: 'address', type: 's' },
    { name: 'verdict', type: 's' },
  ],
} as const satisfies Record<string, readonly ArgSpec[]>;

export type SignalName = keyof typeof SIGNALS;

export function signatureOf(args: readonly ArgSpec[]): string {
  return args.map((a) => a.type).join('');
}

export function isMethodName(member: string): member is MethodName {
  return Object.hasOwn(METHODS, member);
}

/**
 * Error replies carry (message, code, hint): generic D-Bus tools show the message, and our client
 * rebuilds the exact VfbError code, so the CLI's exit status is the one the broker meant even where
 * several codes share one D-Bus error name.
 */
export const ERROR_REPLY_SIGNATURE = 'sss';

/** The D-Bus type of each field of an a{sv} record: fixed per key, so clients can rely on it. */
export type FieldType = 's' | 'u' | 'b';

export const PF_SUMMARY_FIELDS = {
  address: 's',
  plugin: 's',
  state: 's',
  numVfs: 'u',
  needsToken: 'b',
  generation: 'u',
  rotationMode: 's',
  leases: 'u',
  activeSince: 's',
  pendingGeneration: 'u',
  rotationStep: 's',
  waitingFor: 's',
  drainDeadline: 's',
} as const satisfies Record<keyof PfSummary, FieldType>;

export const STATUS_FIELDS = {
  version: 's',
  hostId: 's',
  pfs: 'u',
  leases: 'u',
  storeReachable: 'b',
  uptimeSeconds: 'u',
} as const satisfies Record<keyof BrokerStatus, FieldType>;

/** Runtime lists of the string unions in broker/api.ts, checked both ways by the compiler. */
export const PF_STATES = ['up', 'down', 'degraded', 'rotating'] as const satisfies readonly PfState[];
export const ROTATION_MODES = [
  'live',
  'drain',
  'none',
] as const satisfies readonly PfSummary['rotationMode'][];
export const ROTATION_STATES = [
  'done',
  'draining',
  'rolled-back',
  'cancelled',
] as const satisfies readonly RotationState[];

// A compile error here means a union in broker/api.ts gained a member that the list above lacks.
type Covers<List extends readonly string[], Union extends string> = [Union] extends [List[number]]
  ? true
  : false;
type Assert<T extends true> = T;
export type ProtocolListsAreComplete = [
  Assert<Covers<typeof PF_STATES, PfState>>,
  Assert<Covers<typeof ROTATION_MODES, PfSummary['rotationMode']>>,
  Assert<Covers<typeof ROTATION_STATES, RotationState>>,
];

/**
 * Introspection data, generated from the protocol tables so `busctl introspect` and d-feet show
 * exactly what the service dispatches. The ancestors of the object path answer with a child node,
 * so `busctl tree org.vfbroker.Broker1` finds the object.
 */
import { INTERFACE, METHODS, OBJECT_PATH, SIGNALS, type ArgSpec } from '../../dbus/protocol.js';

const DOCTYPE =
  '<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"\n' +
  ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">\n';

const STANDARD_INTERFACES = `  <interface name="org.freedesktop.DBus.Introspectable">
    <method name="Introspect"><arg name="xml" type="s" direction="out"/></method>
  </interface>
  <interface name="org.freedesktop.DBus.Peer">
    <method name="Ping"/>
    <method name="GetMachineId"><arg name="machine_uuid" type="s" direction="out"/></method>
  </interface>
  <interface name="org.freedesktop.DBus.Properties">
    <method name="Get">
      <arg name="interface_name" type="s" direction="in"/>
      <arg name="property_name" type="s" direction="in"/>
      <arg name="value" type="v" direction="out"/>
    </method>
    <method name="GetAll">
      <arg name="interface_name" type="s" direction="in"/>
      <arg name="props" type="a{sv}" direction="out"/>
    </method>
    <method name="Set">
      <arg name="interface_name" type="s" direction="in"/>
      <arg name="property_name" type="s" direction="in"/>
      <arg name="value" type="v" direction="in"/>
    </method>
    <signal name="PropertiesChanged">
      <arg name="interface_name" type="s"/>
      <arg name="changed_properties" type="a{sv}"/>
      <arg name="invalidated_properties" type="as"/>
    </signal>
  </interface>
`;

/** The standard interfaces every path of the service answers besides its own. */
export const STANDARD_INTERFACE_NAMES = [
  'org.freedesktop.DBus.Introspectable',
  'org.freedesktop.DBus.Peer',
  'org.freedesktop.DBus.Properties',
] as const;

/** The XML for `path`, or null when the service has nothing there. */
export function introspectionXml(path: string): string | null {
  if (path === OBJECT_PATH) return DOCTYPE + `<node>\n${interfaceXml()}${STANDARD_INTERFACES}</node>\n`;
  const prefix = path === '/' ? '/' : `${path}/`;
  if (!OBJECT_PATH.startsWith(prefix)) return null;
  const child = OBJECT_PATH.slice(prefix.length).split('/')[0] as string;
  return DOCTYPE + `<node>\n  <node name="${child}"/>\n</node>\n`;
}

function interfaceXml(): string {
  const arg = (a: ArgSpec, direction?: 'in' | 'out') =>
    `      <arg name="${a.name}" type="${a.type}"${direction ? ` direction="${direction}"` : ''}/>\n`;
  const methods = Object.entries(METHODS).map(
    ([name, spec]) =>
      `    <method name="${name}">\n` +
      spec.in.map((a) => arg(a, 'in')).join('') +
      spec.out.map((a) => arg(a, 'out')).join('') +
      '    </method>\n',
  );
  const signals = Object.entries(SIGNALS).map(
    ([name, args]) => `    <signal name="${name}">\n${args.map((a) => arg(a)).join('')}    </signal>\n`,
  );
  return `  <interface name="${INTERFACE}">\n${methods.join('')}${signals.join('')}  </interface>\n`;
}

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VfbError } from '../../../src/errors.js';
import { loadHostFixture } from '../../../src/sysfs/fixture/load.js';

const PF = `  - address: "0000:04:00.0"
    id: "8086:10c9"
    class: "020000"
    driver: igb
    sriov: { totalVfs: 8, offset: 128, stride: 2, vfDevice: "10ca" }
`;
const host = (devices: string, extra = '') => `drivers: [igb, vfio-pci]\n${extra}devices:\n${devices}`;

describe('malformed host fixtures', () => {
  let dir: string;
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfb-fixture-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Loads `text` as a fixture and returns the one-line CONFIG_INVALID it must fail with, file name cut off. */
  async function refusal(text: string | Buffer): Promise<string> {
    const file = join(dir, `f${n++}.yaml`);
    await writeFile(file, text);
    try {
      await loadHostFixture(file);
    } catch (err) {
      assert.ok(err instanceof VfbError, String(err));
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.ok(!err.message.includes('\n'));
      assert.equal(err.details['file'], file);
      return err.message.slice(file.length + 1);
    }
    assert.fail('the fixture loaded');
  }

  const refusals: [string, string, string][] = [
    [
      'a value of the wrong type',
      host(PF.replace('totalVfs: 8', 'totalVfs: eight')),
      '7:14: devices[0].sriov.totalVfs: expected an integer from 1 to 65535, found "eight"',
    ],
    [
      'an unknown key',
      host(PF, 'colour: blue\n'),
      '2:1: unknown key "colour" (expected one of "description", "drivers", "modules", "devices")',
    ],
    [
      'a VF device ID outside an sriov block',
      host(PF.replace('    class', '    vfDevice: "10ca"\n    class')),
      '5:5: devices[0]: unknown key "vfDevice" (expected one of "address", "id", "class", "driver", "driverOverride", "iommuGroup", "numaNode", "resetMethods", "sriov")',
    ],
    [
      'an address not in canonical form',
      host(PF.replace('0000:04:00.0', '0000:4:00.0')),
      '3:5: devices[0].address: expected a PCI address like 0000:3b:00.0, found "0000:4:00.0" (did you mean 0000:04:00.0?)',
    ],
    [
      'an address that is no address',
      host(PF.replace('0000:04:00.0', '../../etc')),
      '3:5: devices[0].address: expected a PCI address like 0000:3b:00.0, found "../../etc"',
    ],
    [
      'the same address twice',
      host(`${PF}  - { address: "0000:04:00.0", id: "8086:10c9", class: "020000" }\n`),
      '8:7: devices[1].address: duplicate address 0000:04:00.0 (also devices[0])',
    ],
    [
      'an ID written as a number',
      host(PF.replace('vfDevice: "10ca"', 'vfDevice: 1018')),
      '7:51: devices[0].sriov.vfDevice: expected a quoted device ID in lower-case hex like "10ca", found 1018',
    ],
    [
      'a driver that is not built in and not defined',
      `drivers: [igb, e1000e]\ndevices:\n${PF}`,
      '1:16: drivers[1]: unknown driver "e1000e" (built-in: igb, igbvf, vfio-pci, mlx5_core, pci-pf-stub; define others with name and ids)',
    ],
    [
      'a built-in driver redefined',
      `drivers: [{ name: igb, ids: ["8086:10c9"] }]\ndevices:\n${PF}`,
      '1:13: drivers[0].name: "igb" is a built-in driver: list it by name, without a definition',
    ],
    [
      'a driver listed twice',
      `drivers: [igb, igb]\ndevices:\n${PF}`,
      '1:16: drivers[1]: driver "igb" is listed twice',
    ],
    [
      'a driver name that could leave a directory',
      `drivers: [".."]\ndevices:\n${PF}`,
      '1:11: drivers[0]: expected a kernel name of letters, digits, "_", "-" or "." like vfio-pci, found ".."',
    ],
    [
      'a device on a driver that is not loaded',
      `drivers: [vfio-pci]\ndevices:\n${PF}`,
      '6:5: devices[0].driver: driver "igb" is not loaded: add it to drivers',
    ],
    [
      'a device on a driver that would not bind it',
      host(PF.replace('driver: igb', 'driver: vfio-pci')),
      '6:5: devices[0].driver: vfio-pci does not match 8086:10c9 (set driverOverride: vfio-pci)',
    ],
    [
      'a device on vfio-pci outside any IOMMU group',
      host(PF.replace('driver: igb', 'driver: vfio-pci\n    driverOverride: vfio-pci')),
      '6:5: devices[0].driver: vfio-pci binds only devices in an IOMMU group: set iommuGroup',
    ],
    [
      'parameters of a module no driver loads',
      host(PF, 'modules: { mlx5_core: { debug_mask: Y } }\n'),
      '2:12: modules.mlx5_core: module "mlx5_core" is not loaded by any driver listed under drivers',
    ],
    [
      'a parameter the module does not show',
      host(PF, 'modules: { vfio_pci: { enable_sriovv: Y } }\n'),
      '2:24: modules.vfio_pci.enable_sriovv: module vfio_pci has no parameter "enable_sriovv" in sysfs (it has: enable_sriov, disable_idle_d3, disable_vga, disable_denylist, nointxmask)',
    ],
    [
      'a parameter value of the wrong kind',
      host(PF, 'modules: { vfio_pci: { enable_sriov: 1 } }\n'),
      '2:24: modules.vfio_pci.enable_sriov: expected Y, N, true or false, found 1',
    ],
    [
      'a VF that would land on another device',
      host(`${PF}  - { address: "0000:04:10.2", id: "8086:10ca", class: "020000" }\n`),
      '7:5: devices[0].sriov: VF 1 would be at 0000:04:10.2, the address of devices[1]',
    ],
    [
      "a VF that would land on another PF's VF",
      host(`${PF}${PF.replace('0000:04:00.0', '0000:04:00.2').replace('stride: 2', 'stride: 1')}`),
      '12:5: devices[1].sriov: VF 0 would be at 0000:04:10.2, the address of VF 1 of 0000:04:00.0',
    ],
    [
      'VFs past the last bus',
      host(PF.replace('0000:04:00.0', '0000:ff:1f.0')),
      '7:5: devices[0].sriov: VF 0 would be past bus ff (offset and stride put it there)',
    ],
    [
      'stride 0 for several VFs',
      host(PF.replace('stride: 2', 'stride: 0')),
      '7:40: devices[0].sriov.stride: stride 0 is only valid with totalVfs 1 (Linux refuses the capability)',
    ],
    [
      'no devices',
      'drivers: []\ndevices: []\n',
      '2:1: devices: expected at least one device, found an empty list',
    ],
    ['an empty file', '', '1:1: the file is empty; expected a mapping of settings'],
    [
      'broken YAML',
      host(`${PF}  - [unclosed\n`),
      '9:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ],
  ];
  for (const [what, text, message] of refusals) {
    it(`refuses ${what}`, async () => {
      assert.equal(await refusal(text), message);
    });
  }

  it('refuses an alias bomb without expanding it', { timeout: 10_000 }, async () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      levels.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${prev}`).join(', ')}]`,
      );
    }
    assert.equal(
      await refusal(`${levels.join('\n')}\ndrivers: []\ndevices: [*i]\n`),
      '2:8: too many alias expansions (at most 32)',
    );
  });

  it('refuses a 10 MB file without parsing it', { timeout: 10_000 }, async () => {
    const big = Buffer.alloc(10 * 1024 * 1024, '# padding\n');
    assert.equal(await refusal(big), '1:1: the file is larger than 1 MiB (10 MiB)');
  });

  it('refuses a directory and a missing file', async () => {
    const sub = join(dir, 'a-directory.yaml');
    await mkdir(sub);
    await assert.rejects(loadHostFixture(sub), {
      code: 'CONFIG_INVALID',
      message: `${sub}:1:1: not a regular file`,
    });
    const missing = join(dir, 'missing.yaml');
    await assert.rejects(loadHostFixture(missing), {
      code: 'CONFIG_INVALID',
      message: `${missing}: cannot open the file (ENOENT)`,
    });
  });

  it('loads a driver the fixture defines, with the behaviour it gives', async () => {
    const file = join(dir, 'custom.yaml');
    await writeFile(
      file,
      `drivers: [{ name: acme-pf, ids: ["1234:0001"], sriovConfigure: true, setsTotalVfs: 3, removeDisablesSriov: false }]
devices:
  - { address: "0000:10:00.0", id: "1234:0001", class: "ff0000", driver: acme-pf,
      sriov: { totalVfs: 4, offset: 1, stride: 1, vfDevice: "0002", driversAutoprobe: false } }
`,
    );
    const state = await loadHostFixture(file);
    assert.deepEqual(state.drivers, [
      {
        name: 'acme-pf',
        module: 'acme_pf',
        ids: [{ vendor: 0x1234, device: 1 }],
        kind: 'kernel',
        sriovConfigure: true,
        setsTotalVfs: 3,
        removeDisablesSriov: false,
      },
    ]);
    assert.deepEqual(state.devices['0000:10:00.0']?.sriov, {
      totalVfs: 4,
      driverMaxVfs: 3,
      offset: 1,
      stride: 1,
      vfDevice: 2,
      numVfs: 0,
      autoprobe: false,
    });
    assert.deepEqual(state.modules, {});
  });
});

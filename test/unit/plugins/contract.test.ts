/**
 * The contract every plugin keeps, built-in or external: run against each plugin the registry
 * loads (the four built-ins and an external plugin loaded by path), each on a simulated host with
 * a PF of its kind.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { VfbError } from '../../../src/errors.js';
import type { PfConfig, Plugin } from '../../../src/plugins/contract.js';
import { checkManifest } from '../../../src/plugins/manifest.js';
import { pfDown, pfStatus, pfUp } from '../../../src/plugins/lifecycle/pf.js';
import { renderPlan } from '../../../src/plugins/plan.js';
import { PluginRegistry } from '../../../src/plugins/registry.js';
import { captureLogs } from '../../support/log-capture.js';
import { SCENARIOS } from './support/scenarios.js';
import { TOKEN, sysfsState, type World } from './support/world.js';

const external = fileURLToPath(new URL('./fixtures/pf-stub-plugin.js', import.meta.url));

const registry = await PluginRegistry.load({ logger: captureLogs().logger, externalPaths: [external] });

async function withScenario(
  plugin: Plugin,
  test: (world: World, config: PfConfig) => Promise<void>,
): Promise<void> {
  const scenario = SCENARIOS[plugin.manifest.name];
  assert.ok(
    scenario,
    `no contract scenario for plugin ${plugin.manifest.name}: add one to test/unit/plugins/support/scenarios.ts`,
  );
  const { world, config } = await scenario.setUp();
  try {
    await test(world, config);
  } finally {
    await plugin.close();
    await world.cleanup();
  }
  world.assertNoTokenLogged();
}

function tokenFor(plugin: Plugin): string | null {
  return plugin.manifest.needsToken ? TOKEN : null;
}

describe('plugin contract', () => {
  after(() => registry.close());

  it('covers the built-ins and the external plugin', () => {
    assert.deepEqual(
      registry.list().map((l) => [l.plugin.manifest.name, l.source]),
      [
        ['igb', 'built-in'],
        ['intel-fec', 'built-in'],
        ['mlx5', 'built-in'],
        ['generic', 'built-in'],
        ['pf-stub', external],
      ],
    );
  });

  for (const { plugin, source } of registry.list()) {
    describe(`${plugin.manifest.name} (${source === 'built-in' ? 'built-in' : 'external'})`, () => {
      it('has a valid manifest whose token need matches its rotation mode', () => {
        assert.deepEqual(checkManifest(plugin.manifest, source), plugin.manifest);
      });

      it('is the plugin the registry picks for its PF', () =>
        withScenario(plugin, async (world, config) => {
          const selected = await registry.select(world.sim, config);
          assert.equal(selected.plugin, plugin);
        }));

      it('plans without changing anything, and the plan names the PF and the plugin', () =>
        withScenario(plugin, async (world, config) => {
          const before = sysfsState(world.sim);
          const { plan } = await pfUp(world.ctx, plugin, config, null, { dryRun: true });
          assert.deepEqual(sysfsState(world.sim), before);
          assert.equal(world.runner.calls.filter((c) => c.kind === 'spawn').length, 0);
          assert.ok(plan.steps.length > 0);
          assert.equal(plan.plugin, plugin.manifest.name);
          assert.ok(renderPlan(plan).startsWith(`PF ${config.address} (`));
          assert.ok(renderPlan(plan).includes(`plugin ${plugin.manifest.name}`));
        }));

      it('comes up, stays up without changes on a second up, and goes down twice', () =>
        withScenario(plugin, async (world, config) => {
          const up = await pfUp(world.ctx, plugin, config, tokenFor(plugin), { dryRun: false });
          assert.equal(up.status?.state, 'up');
          assert.equal((await world.sim.virtfns(config.address)).length, config.vfs);
          const state = sysfsState(world.sim);
          const again = await pfUp(world.ctx, plugin, config, tokenFor(plugin), { dryRun: false });
          assert.deepEqual(again.plan.steps, []);
          assert.deepEqual(sysfsState(world.sim), state);
          assert.equal((await pfDown(world.ctx, plugin, config)).state, 'down');
          assert.equal((await pfDown(world.ctx, plugin, config)).state, 'down');
          assert.equal((await pfStatus(world.ctx, plugin, config)).vfs.length, 0);
        }));

      it('takes a token exactly when its manifest says it needs one', () =>
        withScenario(plugin, async (world, config) => {
          const wrong = plugin.manifest.needsToken ? null : TOKEN;
          await assert.rejects(
            pfUp(world.ctx, plugin, config, wrong, { dryRun: false }),
            (err) => err instanceof VfbError && err.code === 'INVALID_ARGUMENT',
          );
        }));

      it('rejects an unknown option naming itself and the PF', () =>
        withScenario(plugin, async (world, config) => {
          const bad = { ...config, options: { ...config.options, surelyNotAnOption: 1 } };
          await assert.rejects(
            pfUp(world.ctx, plugin, bad, tokenFor(plugin), { dryRun: true }),
            (err) =>
              err instanceof VfbError &&
              err.code === 'CONFIG_INVALID' &&
              err.message ===
                `plugin ${plugin.manifest.name}, PF ${config.address}: options: unknown key "surelyNotAnOption"`,
          );
        }));
    });
  }
});

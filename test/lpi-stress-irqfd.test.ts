/**
 * `vgic lpi-stress --irqfd` (bench/lpi-stress.ts): injector threads signal irqfds on MSI routes
 * (KVM_SET_GSI_ROUTING with devid, KVM_IRQFD) and the vCPU threads consume them; every signal is
 * consumed and every delivered LPI accounted for, as with injectMsi. The CLI runs both paths side
 * by side.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runLpiStress } from '../src/bench/lpi-stress.ts';
import { parseLpiStressArgs, runLpiStressCli } from '../src/cli/lpi-stress.ts';

test('irqfd injection: no signal lost, every delivered LPI acknowledged or accounted for', async () => {
  const r = await runLpiStress({ vcpus: 2, devices: 2, events: 17, iterations: 300, injection: 'irqfd' });
  assert.equal(r.injection, 'irqfd');
  assert.equal(r.lost, 0);
  assert.equal(r.failed, 0);
  assert.equal(r.badIntids, 0);
  assert.ok(r.delivered > 0, 'some MSIs delivered');
  assert.ok(r.injections >= r.delivered + r.coalesced && r.injections <= r.injected + r.warmup);
  assert.equal(r.delivered, r.acknowledged + r.mergedAtFold + r.drained + r.dropped);
});

test('--irqfd runs each configuration with injectMsi and with irqfds, side by side', async () => {
  assert.deepEqual(parseLpiStressArgs(['--irqfd']).injections, ['msi', 'irqfd']);
  assert.deepEqual(parseLpiStressArgs([]).injections, ['msi']);
  const r = await runLpiStressCli(['-v', '1', '-d', '1', '-e', '4', '-i', '100', '--irqfd']);
  assert.equal(r.failed, false);
  assert.deepEqual(
    r.rows.map((x) => x.injection),
    ['msi', 'irqfd'],
  );
  assert.match(
    r.text,
    /--irqfd\nRate: [\d.]+ LPIs\/sec\nHandled: [\d.]+ LPIs\/sec\nCoalesced: .*\n {2}injected .*\n {2}irqfd: [\d,]+ signals sent/,
  );
  await assert.rejects(
    runLpiStress({ vcpus: 1, devices: 64, events: 65, iterations: 1, injection: 'irqfd' }),
    /at most 4096/,
  );
});

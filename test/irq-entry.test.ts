import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GicV3Guest, MAX_IRQ_NESTING, Vgic } from '../src/index.ts';

function levelSpiGic() {
  const gic = Vgic.create({ vcpus: 1, time: 'virtual' });
  const g = new GicV3Guest(gic.vcpu(0));
  g.enableDistributor();
  g.enableCpu();
  g.routeSpi(33, g.affinity);
  g.enableIrq(33);
  return { gic, g, cpu: gic.vcpu(0) };
}

test('an IRQ storm is a loop of exception entries, not JS recursion', () => {
  const { gic, g, cpu } = levelSpiGic();
  let taken = 0;
  cpu.onIrq(() => {
    const id = g.ack();
    // The device keeps its line high for 20000 deliveries (the recursive design overflowed the JS stack at ~4400).
    if (++taken === 20_000) gic.irqLine(33, false);
    g.eoi(id);
  });
  gic.irqLine(33, true);
  cpu.unmaskIrqs();
  assert.equal(taken, 20_000);
  assert.equal(g.ack(), 1023);
});

test('a handler that unmasks IRQs before quieting its source stops nesting at the limit, counted', () => {
  const { gic, g, cpu } = levelSpiGic();
  let depth = 0;
  let deepest = 0;
  cpu.onIrq((c) => {
    depth++;
    deepest = Math.max(deepest, depth);
    c.unmaskIrqs(); // the same interrupt, not yet acknowledged, is signalled again at once
    c.maskIrqs();
    // On the way out, the deepest handler quiets the device; the others find nothing left.
    const id = g.ack();
    if (id !== 1023) {
      gic.irqLine(33, false);
      g.eoi(id);
    }
    depth--;
  });
  gic.irqLine(33, true);
  cpu.unmaskIrqs();
  cpu.maskIrqs();
  assert.equal(deepest, MAX_IRQ_NESTING);
  assert.ok(gic.stats().irqNestingLimit > 0);
});

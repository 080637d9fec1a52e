/**
 * `vgic conformance` in the test suite: every guest test program gives the same transcript on
 * QEMU 7.2 (the reference) and on vgic's machine. Skipped, with what is missing, where the system
 * packages are not installed (CI installs them: scripts/install-system-deps.sh).
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatConformance, missingTools, normalise, runConformance } from '../src/machine/conformance.ts';

const missing = missingTools();
const skip = missing.length > 0 ? `missing: ${missing.join(', ')}` : false;

describe('conformance: guest programs on QEMU and on vgic', () => {
  it('normalise hides MASK values, drops BENCH lines and CRs', () => {
    assert.equal(
      normalise('a\r\nMASK GICD_IIDR=0x43b\r\nBENCH x ns_per_op=5 ops=1\nb\n\n'),
      'a\nMASK GICD_IIDR=…\nb\n',
    );
  });

  it('every test program: same transcript, both exit 0', { skip, timeout: 300_000 }, async () => {
    const results = await runConformance();
    assert.ok(results.length >= 10, `only ${results.length} programs ran`);
    const failed = results.filter((r) => !r.pass);
    assert.deepEqual(
      failed.map((r) => r.program),
      [],
      formatConformance(results),
    );
  });
});

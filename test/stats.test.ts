/** src/util/stats.ts: the one definition of median, percentile and spread every benchmark uses. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median, percentile, percentileSorted, summarize } from '../src/util/stats.ts';

test('median: the middle of an odd sample, the mean of the two middles of an even one', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([5]), 5);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([10, 20]), 15);
  assert.equal(median(new Float64Array([9, 7, 8, 6, 5])), 7);
  assert.ok(Number.isNaN(median([])));
  const xs = [3, 1, 2];
  median(xs);
  assert.deepEqual(xs, [3, 1, 2], 'the input is not sorted in place');
});

test('percentile: nearest rank', () => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100, unsorted
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 99), 99);
  assert.equal(percentile(xs, 100), 100);
  assert.equal(percentile(xs, 0), 1);
  assert.equal(percentile(xs, 1), 1);
  assert.equal(percentile(xs, 1.5), 2);
  assert.equal(percentile([1, 2, 3, 4], 50), 2, 'nearest rank: the lower middle (the median is 2.5)');
  assert.equal(percentile([1, 2, 3, 4, 5], 50), 3);
  assert.equal(percentileSorted([10, 20, 30], 90), 30);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.ok(Number.isNaN(percentile([1], 101)));
  assert.ok(Number.isNaN(percentile([1], Number.NaN)));
});

test('summarize: median, min, max and spread = (max - min) / median', () => {
  assert.deepEqual(summarize([4, 2, 6, 8]), { n: 4, median: 5, min: 2, max: 8, spread: 6 / 5 });
  assert.deepEqual(summarize([7, 7, 7]), { n: 3, median: 7, min: 7, max: 7, spread: 0 });
  assert.deepEqual(summarize([0, 0]), { n: 2, median: 0, min: 0, max: 0, spread: 0 });
  assert.ok(Number.isNaN(summarize([]).median));
});

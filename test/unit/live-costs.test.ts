import { describe, expect, it } from 'vitest';
import { LiveCosts } from '../../src/gateway/live-costs.js';

const running = (totalCost: string) => ({
  chargerId: 'CP',
  transactionId: 'TX',
  totalCost,
  final: false,
});

describe('R5.1 live costs at the gateway', () => {
  it('keeps the latest running cost and tells CostUpdated at most once per interval', () => {
    const costs = new LiveCosts(60);
    expect(costs.update([running('1.00')], 0)).toEqual([]);
    expect(costs.update([running('2.00')], 59_999)).toEqual([]);
    expect(costs.running('CP', 'TX')).toBe('2.00');
    expect(costs.update([running('3.00')], 60_000)).toEqual([running('3.00')]);
    expect(costs.update([running('4.00')], 61_000)).toEqual([]);
    expect(new LiveCosts(0).update([running('1.00')], 10 ** 9)).toEqual([]);
  });

  it('answers a waiting Ended with the final cost, and a late running cost does not revive it', async () => {
    const costs = new LiveCosts(60);
    costs.update([running('1.00')], 0);
    const waiting = costs.final('CP', 'TX', 5000);
    costs.update([{ chargerId: 'CP', transactionId: 'TX', totalCost: '1.50', final: true }], 1);
    await expect(waiting).resolves.toBe('1.50');
    costs.update([running('1.20')], 2);
    expect(costs.running('CP', 'TX')).toBeUndefined();
    // A repeated Ended is answered at once.
    await expect(costs.final('CP', 'TX', 5000)).resolves.toBe('1.50');
  });

  it('gives up after the wait and counts it; a failed rating answers null', async () => {
    const costs = new LiveCosts(60);
    await expect(costs.final('CP', 'OTHER', 20)).resolves.toBeUndefined();
    expect(costs.stats.finalTimeouts).toBe(1);
    costs.update([{ chargerId: 'CP', transactionId: 'BAD', totalCost: null, final: true }], 0);
    await expect(costs.final('CP', 'BAD', 20)).resolves.toBeNull();
  });

  it('forgets final costs after ten minutes', () => {
    const costs = new LiveCosts(60);
    costs.update([{ chargerId: 'CP', transactionId: 'TX', totalCost: '1.00', final: true }], 0);
    expect(costs.size).toBe(1);
    costs.update([], 11 * 60_000);
    expect(costs.size).toBe(0);
  });
});

import { describe, expect, it } from 'vitest';
import { rateEnergy, type EnergyPrice } from '../../src/rating/energy-rating.js';

const price = (over: Partial<EnergyPrice> = {}): EnergyPrice => ({
  tariffId: 't',
  currency: 'EUR',
  pricePerKwh: '0.30',
  vatPercent: '22',
  stepWh: 1,
  ...over,
});

describe('skeleton per-kWh rating', () => {
  it('R5 10 kWh at 0.30/kWh + 22 % VAT is 3.00 + 0.66 = 3.66', () => {
    const amounts = rateEnergy(price(), 10_000, 'EUR', true);
    expect(amounts).toMatchObject({ totalExclVat: '3.00', totalVat: '0.66', totalInclVat: '3.66' });
    expect(amounts.lines).toEqual([
      {
        dimension: 'ENERGY',
        quantity: '10',
        unitPrice: '0.3',
        vatRate: '22',
        net: '3.00',
        vat: '0.66',
      },
    ]);
  });

  it('R3.1 step size rounds the session total up once, at the end only (rating.md case 1)', () => {
    const at = (stepWh: number, final: boolean) =>
      rateEnergy(price({ pricePerKwh: '0.25', vatPercent: null, stepWh }), 115.2, 'EUR', final);
    expect(at(1, true).lines[0]?.quantity).toBe('0.116');
    expect(at(25, true).lines[0]?.quantity).toBe('0.125');
    expect(at(500, true).lines[0]?.quantity).toBe('0.5');
    expect(at(500, true).totalExclVat).toBe('0.13'); // 0.125 rounded half-up
    expect(at(500, false).lines[0]?.quantity).toBe('0.1152');
  });

  it('R4.2 VAT is computed on the rounded net, half-up', () => {
    // 1.5 kWh × 0.333 = 0.4995 → 0.50; VAT 22 % of 0.50 = 0.11.
    expect(rateEnergy(price({ pricePerKwh: '0.333' }), 1500, 'EUR', true)).toMatchObject({
      totalExclVat: '0.50',
      totalVat: '0.11',
      totalInclVat: '0.61',
    });
  });

  it('R1 a component without VAT is not the same as 0 %: no VAT rate on the line', () => {
    const amounts = rateEnergy(price({ vatPercent: null }), 1000, 'EUR', true);
    expect(amounts.lines[0]?.vatRate).toBeNull();
    expect(amounts.totalVat).toBe('0.00');
  });

  it('R4.1 no binary floating point: 0.1 + 0.2 style sums stay exact', () => {
    expect(
      rateEnergy(price({ pricePerKwh: '0.1', vatPercent: '0' }), 3000, 'EUR', true).totalExclVat,
    ).toBe('0.30');
  });

  it('uses the minor unit of the currency', () => {
    expect(
      rateEnergy(price({ currency: 'KWD', pricePerKwh: '0.0123' }), 1000, 'KWD', true).totalExclVat,
    ).toBe('0.012');
    expect(
      rateEnergy(price({ currency: 'JPY', pricePerKwh: '45.5' }), 1000, 'JPY', true).totalExclVat,
    ).toBe('46');
  });

  it('a session without a tariff is free', () => {
    expect(rateEnergy(null, 5000, 'EUR', true)).toMatchObject({ totalInclVat: '0.00', lines: [] });
  });
});

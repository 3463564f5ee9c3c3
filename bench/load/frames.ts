/** The frames the load benchmarks send, identical across them so their figures compare. */

export const T0 = Date.parse('2026-11-20T08:00:00Z');

/** The readings (`meter_readings` rows) of one frame of meterValues. */
export const READINGS_PER_FRAME = 5;

/**
 * The n-th MeterValues of a transaction (~420 bytes as JSON): the energy register, power,
 * current, voltage and SoC, one sample interval (1 s of virtual time) after the previous one.
 */
export function meterValues(transactionId: number, n: number): object {
  return {
    connectorId: 1,
    transactionId,
    meterValue: [
      {
        timestamp: new Date(T0 + n * 1000).toISOString(),
        sampledValue: [
          {
            value: String(n * 5),
            measurand: 'Energy.Active.Import.Register',
            unit: 'Wh',
            context: 'Sample.Periodic',
          },
          {
            value: '18000',
            measurand: 'Power.Active.Import',
            unit: 'W',
            context: 'Sample.Periodic',
          },
          {
            value: '26',
            measurand: 'Current.Import',
            unit: 'A',
            phase: 'L1',
            context: 'Sample.Periodic',
          },
          {
            value: '230.1',
            measurand: 'Voltage',
            unit: 'V',
            phase: 'L1-N',
            context: 'Sample.Periodic',
          },
          {
            value: String(20 + (n % 70)),
            measurand: 'SoC',
            unit: 'Percent',
            context: 'Sample.Periodic',
          },
        ],
      },
    ],
  };
}

import type { Settings } from '../config/network.js';
import type { OcppVersion } from '../ocpp/rpc.js';

/** The measurands every charger is asked to sample (H1). */
const MEASURANDS = 'Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC';

/**
 * The integration profile of rule H1, pushed after an accepted BootNotification: 15 s samples
 * of energy, power, current, voltage and SoC; authorization always by the central system (no
 * local lists, caches or offline starts for unknown tokens); a connection timeout a little
 * shorter than the ready-session expiration (S2); three attempts per transaction message.
 */
export function provisioningCalls(
  protocol: OcppVersion,
  settings: Settings,
): Array<{ action: string; payload: object }> {
  const connectionTimeoutS = Math.max(5, settings.readySessionExpirationS - 5);
  if (protocol === 'ocpp1.6') {
    const keys: Array<[string, string]> = [
      ['MeterValueSampleInterval', '15'],
      ['MeterValuesSampledData', MEASURANDS],
      ['ConnectionTimeOut', String(connectionTimeoutS)],
      ['AuthorizeRemoteTxRequests', 'true'],
      ['AuthorizationCacheEnabled', 'false'],
      ['LocalAuthorizeOffline', 'false'],
      ['AllowOfflineTxForUnknownId', 'false'],
      ['TransactionMessageAttempts', '3'],
    ];
    return keys.map(([key, value]) => ({ action: 'ChangeConfiguration', payload: { key, value } }));
  }
  const variables: Array<[component: string, variable: string, value: string, instance?: string]> =
    [
      ['SampledDataCtrlr', 'TxUpdatedInterval', '15'],
      ['SampledDataCtrlr', 'TxUpdatedMeasurands', MEASURANDS],
      ['TxCtrlr', 'EVConnectionTimeOut', String(connectionTimeoutS)],
      ['AuthCtrlr', 'AuthorizeRemoteStart', 'true'],
      ['AuthCacheCtrlr', 'Enabled', 'false'],
      ['AuthCtrlr', 'LocalAuthorizeOffline', 'false'],
      ['AuthCtrlr', 'OfflineTxForUnknownIdEnabled', 'false'],
      ['OCPPCommCtrlr', 'MessageAttempts', '3', 'TransactionEvent'],
    ];
  return [
    {
      action: 'SetVariables',
      payload: {
        setVariableData: variables.map(([component, variable, attributeValue, instance]) => ({
          attributeValue,
          component: { name: component },
          variable: instance === undefined ? { name: variable } : { name: variable, instance },
        })),
      },
    },
  ];
}

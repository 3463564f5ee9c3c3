import { chTime } from '../lib/time.js';
import { sqlString, type Store } from '../store/store.js';
import { money } from './money.js';

/** One invoice line of a stored CDR; amounts are decimal text. */
export interface CdrLineRecord {
  readonly dimension: string;
  readonly quantity: string;
  readonly unit: string;
  readonly unitPrice: string;
  /** Percent, or null when the line states no VAT rate. */
  readonly vatRate: string | null;
  readonly net: string;
  readonly vat: string;
}

/** How a credit CDR came about; '' for a debit CDR. */
export type Correction = '' | 'cancellation' | 'refund';

/** A CDR as stored in `cdrs` (columns renamed to camelCase, decimals as text, times ISO). */
export interface CdrRecord {
  readonly cdrId: string;
  readonly sessionId: string;
  readonly kind: 'debit' | 'credit';
  readonly correction: Correction;
  readonly creditReferenceId: string;
  readonly requestId: string;
  readonly requestedBy: string;
  readonly chargerId: string;
  readonly siteId: string;
  readonly operatorId: string;
  readonly connectorId: number;
  readonly customerId: string;
  readonly tokenId: string;
  readonly tariffId: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly energyWh: string;
  readonly chargingS: number;
  readonly parkingS: number;
  readonly totalExclVat: string;
  readonly totalVat: string;
  readonly totalInclVat: string;
  readonly currency: string;
  readonly description: string;
  readonly createdAt: string;
  readonly lines: readonly CdrLineRecord[];
}

/** A session's latest version, as `sessions` shows it (decimals as text, times ISO). */
export interface SessionRecord {
  readonly sessionId: string;
  readonly chargerId: string;
  readonly siteId: string;
  readonly operatorId: string;
  readonly connectorId: number;
  readonly transactionId: string;
  readonly status: string;
  readonly reason: string;
  readonly customerId: string;
  readonly tokenId: string;
  readonly tariffId: string;
  readonly startedAt: string;
  readonly endedAt: string | null;
  readonly energyWh: string;
  readonly chargingS: number;
  readonly parkingS: number;
  readonly faultS: number;
  readonly reservationS: number;
  readonly costExclVat: string;
  readonly vat: string;
  readonly costInclVat: string;
  readonly currency: string;
  readonly flags: readonly string[];
  readonly error: string;
}

/** ClickHouse DateTime64 text ('2026-11-20 08:00:00.000') → ISO 8601 UTC. */
export function isoOf(chTime: string): string {
  return `${chTime.replace(' ', 'T')}Z`;
}

/** ISO 8601 (or epoch ms) → the DateTime64(3) text ClickHouse reads. */
const SESSION_COLUMNS = `session_id, charger_id, site_id, operator_id, connector_id, transaction_id,
  status, reason, customer_id, token_id, tariff_id, toString(started_at) AS started_at_text,
  if(isNull(ended_at), NULL, toString(ended_at)) AS ended_at_text, toString(energy_wh) AS energy_wh_text,
  charging_s, parking_s, fault_s, reservation_s, toString(cost_excl_vat) AS cost_excl_vat_text,
  toString(vat) AS vat_text, toString(cost_incl_vat) AS cost_incl_vat_text, currency, flags, error`;

interface SessionRow {
  session_id: string;
  charger_id: string;
  site_id: string;
  operator_id: string;
  connector_id: number;
  transaction_id: string;
  status: string;
  reason: string;
  customer_id: string;
  token_id: string;
  tariff_id: string;
  started_at_text: string;
  ended_at_text: string | null;
  energy_wh_text: string;
  charging_s: number;
  parking_s: number;
  fault_s: number;
  reservation_s: number;
  cost_excl_vat_text: string;
  vat_text: string;
  cost_incl_vat_text: string;
  currency: string;
  flags: string[];
  error: string;
}

function sessionOf(r: SessionRow): SessionRecord {
  return {
    sessionId: r.session_id,
    chargerId: r.charger_id,
    siteId: r.site_id,
    operatorId: r.operator_id,
    connectorId: r.connector_id,
    transactionId: r.transaction_id,
    status: r.status,
    reason: r.reason,
    customerId: r.customer_id,
    tokenId: r.token_id,
    tariffId: r.tariff_id,
    startedAt: isoOf(r.started_at_text),
    endedAt: r.ended_at_text === null ? null : isoOf(r.ended_at_text),
    energyWh: r.energy_wh_text,
    chargingS: r.charging_s,
    parkingS: r.parking_s,
    faultS: r.fault_s,
    reservationS: r.reservation_s,
    costExclVat: money(r.cost_excl_vat_text, r.currency),
    vat: money(r.vat_text, r.currency),
    costInclVat: money(r.cost_incl_vat_text, r.currency),
    currency: r.currency,
    flags: r.flags,
    error: r.error,
  };
}

/** The latest version of one session, or null. */
export async function readSession(store: Store, sessionId: string): Promise<SessionRecord | null> {
  const [row] = await store.rows<SessionRow>(
    `SELECT ${SESSION_COLUMNS} FROM sessions_log WHERE session_id = ${sqlString(sessionId)}
     ORDER BY version DESC LIMIT 1`,
  );
  return row === undefined ? null : sessionOf(row);
}

/** Sessions by a WHERE clause over `sessions`, in the order and page given. */
export async function readSessions(
  store: Store,
  where: string,
  orderAndLimit: string,
): Promise<SessionRecord[]> {
  const rows = await store.rows<SessionRow>(
    `SELECT ${SESSION_COLUMNS} FROM sessions WHERE ${where} ${orderAndLimit}`,
  );
  return rows.map(sessionOf);
}

const CDR_COLUMNS = `cdr_id, session_id, toString(kind) AS kind_text, correction, credit_reference_id,
  request_id, requested_by, charger_id, site_id, operator_id, connector_id, customer_id, token_id,
  tariff_id, toString(started_at) AS started_at_text, toString(ended_at) AS ended_at_text,
  toString(energy_wh) AS energy_wh_text, charging_s, parking_s,
  toString(total_excl_vat) AS total_excl_vat_text, toString(total_vat) AS total_vat_text,
  toString(total_incl_vat) AS total_incl_vat_text, currency, description,
  toString(created_at) AS created_at_text, lines.dimension AS line_dimension,
  arrayMap(x -> toString(x), lines.quantity) AS line_quantity, lines.unit AS line_unit,
  arrayMap(x -> toString(x), lines.unit_price) AS line_unit_price,
  arrayMap(x -> if(isNull(x), NULL, toString(x)), lines.vat_rate) AS line_vat_rate,
  arrayMap(x -> toString(x), lines.net) AS line_net,
  arrayMap(x -> toString(x), lines.vat) AS line_vat`;

interface CdrRow {
  cdr_id: string;
  session_id: string;
  kind_text: 'debit' | 'credit';
  correction: Correction;
  credit_reference_id: string;
  request_id: string;
  requested_by: string;
  charger_id: string;
  site_id: string;
  operator_id: string;
  connector_id: number;
  customer_id: string;
  token_id: string;
  tariff_id: string;
  started_at_text: string;
  ended_at_text: string;
  energy_wh_text: string;
  charging_s: number;
  parking_s: number;
  total_excl_vat_text: string;
  total_vat_text: string;
  total_incl_vat_text: string;
  currency: string;
  description: string;
  created_at_text: string;
  line_dimension: string[];
  line_quantity: string[];
  line_unit: string[];
  line_unit_price: string[];
  line_vat_rate: Array<string | null>;
  line_net: string[];
  line_vat: string[];
}

function cdrOf(r: CdrRow): CdrRecord {
  return {
    cdrId: r.cdr_id,
    sessionId: r.session_id,
    kind: r.kind_text,
    correction: r.correction,
    creditReferenceId: r.credit_reference_id,
    requestId: r.request_id,
    requestedBy: r.requested_by,
    chargerId: r.charger_id,
    siteId: r.site_id,
    operatorId: r.operator_id,
    connectorId: r.connector_id,
    customerId: r.customer_id,
    tokenId: r.token_id,
    tariffId: r.tariff_id,
    startedAt: isoOf(r.started_at_text),
    endedAt: isoOf(r.ended_at_text),
    energyWh: r.energy_wh_text,
    chargingS: r.charging_s,
    parkingS: r.parking_s,
    totalExclVat: money(r.total_excl_vat_text, r.currency),
    totalVat: money(r.total_vat_text, r.currency),
    totalInclVat: money(r.total_incl_vat_text, r.currency),
    currency: r.currency,
    description: r.description,
    createdAt: isoOf(r.created_at_text),
    lines: r.line_dimension.map((dimension, i) => ({
      dimension,
      quantity: r.line_quantity[i] ?? '0',
      unit: r.line_unit[i] ?? '',
      unitPrice: r.line_unit_price[i] ?? '0',
      vatRate: r.line_vat_rate[i] ?? null,
      net: money(r.line_net[i] ?? '0', r.currency),
      vat: money(r.line_vat[i] ?? '0', r.currency),
    })),
  };
}

/** CDRs by a WHERE clause, in a stable order: creation time, then id. */
export async function readCdrs(store: Store, where: string): Promise<CdrRecord[]> {
  const rows = await store.rows<CdrRow>(
    `SELECT ${CDR_COLUMNS} FROM cdrs WHERE ${where} ORDER BY created_at, cdr_id`,
  );
  // Retried writes are deduplicated by the store; should one slip through, an id is one CDR.
  const byId = new Map<string, CdrRecord>();
  for (const r of rows) if (!byId.has(r.cdr_id)) byId.set(r.cdr_id, cdrOf(r));
  return [...byId.values()];
}

export function cdrsOfSession(store: Store, sessionId: string): Promise<CdrRecord[]> {
  return readCdrs(store, `session_id = ${sqlString(sessionId)}`);
}

/** A CDR as the cdrs table takes it (JSONEachRow). */
export function cdrInsertRow(cdr: CdrRecord, logPartition: number): string {
  return (
    JSON.stringify({
      cdr_id: cdr.cdrId,
      session_id: cdr.sessionId,
      kind: cdr.kind,
      correction: cdr.correction,
      credit_reference_id: cdr.creditReferenceId,
      request_id: cdr.requestId,
      requested_by: cdr.requestedBy,
      charger_id: cdr.chargerId,
      site_id: cdr.siteId,
      operator_id: cdr.operatorId,
      connector_id: cdr.connectorId,
      customer_id: cdr.customerId,
      token_id: cdr.tokenId,
      tariff_id: cdr.tariffId,
      started_at: chTime(cdr.startedAt),
      ended_at: chTime(cdr.endedAt),
      energy_wh: cdr.energyWh,
      charging_s: cdr.chargingS,
      parking_s: cdr.parkingS,
      total_excl_vat: cdr.totalExclVat,
      total_vat: cdr.totalVat,
      total_incl_vat: cdr.totalInclVat,
      currency: cdr.currency,
      description: cdr.description,
      created_at: chTime(cdr.createdAt),
      'lines.dimension': cdr.lines.map((l) => l.dimension),
      'lines.quantity': cdr.lines.map((l) => l.quantity),
      'lines.unit': cdr.lines.map((l) => l.unit),
      'lines.unit_price': cdr.lines.map((l) => l.unitPrice),
      'lines.vat_rate': cdr.lines.map((l) => l.vatRate),
      'lines.net': cdr.lines.map((l) => l.net),
      'lines.vat': cdr.lines.map((l) => l.vat),
      log_partition: logPartition,
      log_offset: 0,
    }) + '\n'
  );
}

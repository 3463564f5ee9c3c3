import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { ChargestreamError, errorMessage } from '../lib/errors.js';
import { compileTariff } from '../rating/tariff.js';
import { overlapStart, validityRange } from '../rating/validity.js';
import { tariffIds } from './network-index.js';
import { compileDetails, type TariffDetail } from '../rating/tariff-details.js';
import { schemaPath } from '../lib/paths.js';
import { createAjv } from '../lib/ajv.js';
import { THRESHOLD_EVENTS, type NotificationEvent } from './notification-events.js';

export {
  THRESHOLD_EVENTS,
  type NotificationEvent,
  type ThresholdEvent,
} from './notification-events.js';

/** The network file of the contract (`network.yaml`, JSON accepted too), after validation. */
export interface Network {
  readonly settings: Settings;
  readonly organizations: readonly Organization[];
  readonly sites: readonly Site[];
  readonly chargers: readonly Charger[];
  readonly tariffs: readonly Tariff[];
  readonly ratePlans: readonly RatePlan[];
  readonly customers: readonly Customer[];
  readonly tokens: readonly Token[];
  readonly apiKeys: readonly ApiKey[];
  readonly notificationRules: readonly NotificationRule[];
}

/** Session expirations (S2, S3) an operator, a site or a charger may set for itself. */
export interface Expirations {
  readonly readySessionExpirationS?: number;
  readonly ongoingSessionExpirationS?: number;
}

/**
 * N2: which events a rule selects, its threshold (Wh for energy_limit, seconds for the time
 * limits, the currency for monetary_limit, % for soc_limit), the statuses status_changed is
 * filtered to, the receiver (`customer`: the session's customer; otherwise a fixed address),
 * and the publisher: the stored log, a webhook (POST, signed with `secret`), or the bus topic.
 */
export interface NotificationRule {
  readonly id: string;
  readonly events: readonly NotificationEvent[];
  readonly threshold?: string;
  readonly statuses?: readonly string[];
  readonly receiver?: string;
  readonly publisher: 'log' | 'webhook' | 'bus';
  readonly url?: string;
  readonly secret?: string;
}

export interface Settings {
  readonly currency: string;
  readonly readySessionExpirationS: number;
  readonly ongoingSessionExpirationS: number;
  readonly defaultTariff?: TariffRef;
  readonly autoRegisterChargers: boolean;
  /** Max power assumed for connectors of auto-registered chargers. */
  readonly defaultMaxPowerW: number;
  readonly minimumStartBalance: string;
  /** Raw meter readings are kept this many days (by reading time); 0: for ever. */
  readonly readingsRetentionDays: number;
  /** R5.1: CostUpdated to a 2.0.1 charger at most this often per transaction (s); 0: never. */
  readonly costUpdatedIntervalS: number;
}
export interface Organization extends Expirations {
  readonly id: string;
  readonly type: 'cpo' | 'emp';
  readonly parent?: string | null;
  /** R3: an operator's tariff, for its sites that name none. */
  readonly tariff?: TariffRef;
  /**
   * R3: a roaming partner's (or payment terminal's) platform tariff for the sessions of its
   * customers, and the most a session may cost (its authorized amount), watched as a threshold.
   */
  readonly roamingTariff?: TariffRef;
  readonly maxAuthorizedAmount?: string;
}
export interface Site extends Expirations {
  readonly id: string;
  readonly operator: string;
  readonly timezone: string;
  readonly tariff?: TariffRef;
}
export interface Connector {
  readonly id: number;
  readonly maxPowerW: number;
}
export interface Charger extends Expirations {
  readonly id: string;
  readonly site: string;
  readonly password?: string;
  readonly passwordHash?: string;
  readonly tariff?: TariffRef;
  readonly connectors: readonly Connector[];
}
export type ComponentType = 'ENERGY' | 'TIME' | 'PARKING_TIME' | 'FLAT' | 'RESERVATION';
export interface PriceComponent {
  readonly type: ComponentType;
  readonly price: string;
  readonly vat?: string;
  readonly stepSize?: number;
}
/**
 * Where a level of tariff resolution (R3) names its tariff: one id, or several whose validity
 * does not overlap (this year's and next year's prices), of which the one valid at a session's
 * start applies. None valid: resolution goes on to the next level.
 */
export type TariffRef = string | readonly string[];

export interface TariffElement {
  readonly components: readonly PriceComponent[];
  readonly restrictions?: Readonly<Record<string, unknown>>;
}
/**
 * A tariff as the engine holds it: OCPI elements. One written in the file with `details` (the
 * seed's roaming tariff details, domain R2) holds the elements they compile to.
 */
export interface Tariff {
  readonly id: string;
  readonly currency: string;
  /** Validity (OCPI start/end_date_time): RFC 3339 instants, start inclusive, end exclusive. */
  readonly startDateTime?: string;
  readonly endDateTime?: string;
  readonly elements: readonly TariffElement[];
  readonly minPrice?: { readonly exclVat: string; readonly inclVat?: string };
  readonly maxPrice?: { readonly exclVat: string; readonly inclVat?: string };
}
export interface RatePlan {
  readonly id: string;
  readonly tariff: TariffRef;
  readonly chargingTimeRefundPer15Min?: string;
  readonly standardBoost?: boolean;
}
export interface Customer {
  readonly id: string;
  readonly organization: string;
  readonly paymentType: 'prepaid' | 'postpaid' | 'pay_now';
  readonly balance?: string;
  readonly ratePlan?: string;
  /** pay_now: a payment method is on file (absent: yes). */
  readonly paymentMethod?: boolean;
  /** postpaid: the contract is active (absent: yes). */
  readonly contractActive?: boolean;
}
export interface Token {
  readonly id: string;
  readonly type: string;
  readonly customer: string;
  readonly blocked?: boolean;
  readonly expiresAt?: string;
}
export type Role = 'admin' | 'financial_support' | 'operator' | 'analyst' | 'viewer';
/** An API key: the key itself, or its SHA-256 digest (hex) so the file holds no secret. */
export interface ApiKey {
  readonly key?: string;
  readonly keyHash?: string;
  readonly role: Role;
  readonly organization: string;
}

const schema: unknown = JSON.parse(readFileSync(schemaPath('network.schema.json'), 'utf8'));

const validate = createAjv({ strict: true, allowUnionTypes: true }).compile(schema as object);

const DEFAULT_SETTINGS: Settings = {
  currency: 'EUR',
  readySessionExpirationS: 30,
  ongoingSessionExpirationS: 3600,
  autoRegisterChargers: false,
  defaultMaxPowerW: 22_000,
  minimumStartBalance: '0',
  readingsRetentionDays: 0,
  costUpdatedIntervalS: 60,
};

/** A charger password as the network file's `passwordHash` holds it: `sha256:<hex>`. */
export function passwordHashOf(password: string): string {
  return `sha256:${createHash('sha256').update(password).digest('hex')}`;
}

/** Reads and validates a network file; errors name the file, the field and why (exit code 2). */
export function loadNetworkFile(path: string): Network {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ChargestreamError('CONFIG_INVALID', `network file ${path}: cannot be read`, {
      cause: error,
    });
  }
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new ChargestreamError(
      'CONFIG_INVALID',
      `network file ${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${reason}`,
    );
  }
  return parseNetwork(raw, `network file ${path}`);
}

export function parseNetwork(raw: unknown, source = 'network'): Network {
  if (!validate(raw)) {
    throw new ChargestreamError('CONFIG_INVALID', `${source}: ${describe(validate.errors?.[0])}`);
  }
  const sourceProblem = checkTariffSources(raw as RawNetwork);
  if (sourceProblem !== null)
    throw new ChargestreamError('CONFIG_INVALID', `${source}: ${sourceProblem}`);
  const network = normalize(raw as RawNetwork);
  const problem = checkReferences(network) ?? checkTariffs(network) ?? checkTariffLevels(network);
  if (problem !== null) throw new ChargestreamError('CONFIG_INVALID', `${source}: ${problem}`);
  return deepFreeze(network);
}

function describe(error: ErrorObject | undefined): string {
  if (error === undefined) return 'invalid';
  const path = fieldPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${join(path, String(params['missingProperty']))}: is required`;
    case 'additionalProperties':
      return `${join(path, String(params['additionalProperty']))}: is not a known field`;
    case 'enum':
      return `${path || '(root)'}: must be one of ${(params['allowedValues'] as unknown[]).join(', ')}`;
    default:
      return `${path || '(root)'}: ${error.message ?? 'is invalid'}`;
  }
}

/** "/chargers/0/connectors/1/maxPowerW" → "chargers[0].connectors[1].maxPowerW". */
function fieldPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce(
      (acc, part) =>
        /^\d+$/.test(part) ? `${acc}[${part}]` : acc === '' ? part : `${acc}.${part}`,
      '',
    );
}

function join(path: string, field: string): string {
  return path === '' ? field : `${path}.${field}`;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
/** A tariff as written in the file: `elements`, or `details` instead (R2). */
type RawTariff = Omit<Tariff, 'elements'> & {
  elements?: Tariff['elements'];
  details?: readonly TariffDetail[];
};
type RawNetwork = Partial<Mutable<Omit<Network, 'tariffs'>>> & {
  settings?: Partial<Settings>;
  tariffs?: RawTariff[];
};

/** Decimal fields may be written as numbers: they are kept as their decimal text. */
function normalize(raw: RawNetwork): Network {
  const text = (v: string | number): string => String(v);
  const optText = (v: string | number | undefined): string | undefined =>
    v === undefined ? undefined : String(v);
  const price = (p: { exclVat: string | number; inclVat?: string | number } | undefined) =>
    p === undefined ? undefined : { exclVat: text(p.exclVat), inclVat: optText(p.inclVat) };
  return {
    settings: {
      ...DEFAULT_SETTINGS,
      ...raw.settings,
      minimumStartBalance: text(
        raw.settings?.minimumStartBalance ?? DEFAULT_SETTINGS.minimumStartBalance,
      ),
    },
    organizations: (raw.organizations ?? []).map((o) => ({
      ...o,
      maxAuthorizedAmount: optText(o.maxAuthorizedAmount),
    })),
    sites: (raw.sites ?? []).map((s) => ({ ...s, timezone: s.timezone ?? 'UTC' })),
    chargers: raw.chargers ?? [],
    tariffs: (raw.tariffs ?? []).map(({ details, elements, ...t }, i) => {
      const components = (list: readonly PriceComponent[]) =>
        list.map((c) => ({ ...c, price: text(c.price), vat: optText(c.vat) }));
      return {
        ...t,
        minPrice: price(t.minPrice),
        maxPrice: price(t.maxPrice),
        // checkTariffSources has compiled the details once already: this cannot fail.
        elements:
          details === undefined
            ? (elements ?? []).map((e) => ({ ...e, components: components(e.components) }))
            : compileDetails(
                details.map((d) => ({ ...d, components: components(d.components) })),
                (field, why) => {
                  throw new ChargestreamError('CONFIG_INVALID', `tariffs[${i}].${field}: ${why}`);
                },
              ),
      };
    }),
    ratePlans: (raw.ratePlans ?? []).map((r) => ({
      ...r,
      chargingTimeRefundPer15Min: optText(r.chargingTimeRefundPer15Min),
    })),
    customers: (raw.customers ?? []).map((c) => ({ ...c, balance: optText(c.balance) })),
    tokens: raw.tokens ?? [],
    apiKeys: raw.apiKeys ?? [],
    notificationRules: (raw.notificationRules ?? []).map((r) => ({
      ...r,
      threshold: optText(r.threshold),
    })),
  };
}

/** Cross-references the schema cannot express; the first problem, with its field. */
function checkReferences(n: Network): string | null {
  const ids = (
    items: ReadonlyArray<{ readonly id: string | number }>,
    field: string,
  ): Set<string | number> | string => {
    const seen = new Set<string | number>();
    for (const [i, item] of items.entries()) {
      if (seen.has(item.id)) return `${field}[${i}].id: duplicate id ${String(item.id)}`;
      seen.add(item.id);
    }
    return seen;
  };
  const sets: Record<string, Set<string | number>> = {};
  for (const field of [
    'organizations',
    'sites',
    'chargers',
    'tariffs',
    'ratePlans',
    'customers',
    'tokens',
  ] as const) {
    const result = ids(n[field], field);
    if (typeof result === 'string') return result;
    sets[field] = result;
  }
  const has = (field: string, id: string | null | undefined) =>
    id == null || (sets[field]?.has(id) ?? false);
  const refs: Array<[string, string | null | undefined, string]> = [];
  const tariffRefs = (field: string, ref: TariffRef | undefined) => {
    if (typeof ref === 'string' || ref === undefined) refs.push([field, ref, 'tariffs']);
    else ref.forEach((id, j) => refs.push([`${field}[${j}]`, id, 'tariffs']));
  };
  n.organizations.forEach((o, i) => {
    refs.push([`organizations[${i}].parent`, o.parent, 'organizations']);
    tariffRefs(`organizations[${i}].tariff`, o.tariff);
    tariffRefs(`organizations[${i}].roamingTariff`, o.roamingTariff);
  });
  n.sites.forEach((s, i) => {
    refs.push([`sites[${i}].operator`, s.operator, 'organizations']);
    tariffRefs(`sites[${i}].tariff`, s.tariff);
  });
  n.chargers.forEach((c, i) => {
    refs.push([`chargers[${i}].site`, c.site, 'sites']);
    tariffRefs(`chargers[${i}].tariff`, c.tariff);
  });
  n.ratePlans.forEach((r, i) => tariffRefs(`ratePlans[${i}].tariff`, r.tariff));
  n.customers.forEach((c, i) => {
    refs.push([`customers[${i}].organization`, c.organization, 'organizations']);
    refs.push([`customers[${i}].ratePlan`, c.ratePlan, 'ratePlans']);
  });
  n.tokens.forEach((t, i) => refs.push([`tokens[${i}].customer`, t.customer, 'customers']));
  n.apiKeys.forEach((k, i) =>
    refs.push([`apiKeys[${i}].organization`, k.organization, 'organizations']),
  );
  for (const [i, k] of n.apiKeys.entries()) {
    if ((k.key === undefined) === (k.keyHash === undefined))
      return `apiKeys[${i}]: give key or keyHash (exactly one)`;
  }
  tariffRefs('settings.defaultTariff', n.settings.defaultTariff);
  for (const [field, id, target] of refs) {
    if (!has(target, id))
      return `${field}: refers to unknown ${target.replace(/s$/, '')} ${String(id)}`;
  }
  for (const [i, c] of n.chargers.entries()) {
    const seen = new Set<number>();
    for (const [j, connector] of c.connectors.entries()) {
      if (seen.has(connector.id))
        return `chargers[${i}].connectors[${j}].id: duplicate connector ${connector.id}`;
      seen.add(connector.id);
    }
    if (c.password !== undefined && c.passwordHash !== undefined) {
      return `chargers[${i}]: give password or passwordHash, not both`;
    }
  }
  const ruleIds = new Set<string>();
  for (const [i, rule] of n.notificationRules.entries()) {
    const field = `notificationRules[${i}]`;
    if (ruleIds.has(rule.id)) return `${field}.id: duplicate id ${rule.id}`;
    ruleIds.add(rule.id);
    const limits = rule.events.filter((e) => THRESHOLD_EVENTS.has(e));
    if (limits.length > 0 && rule.threshold === undefined)
      return `${field}.threshold: required for ${limits.join(', ')}`;
    if (limits.length > 1)
      return `${field}.events: one threshold event a rule (${limits.join(', ')}), each has its unit`;
    if (limits.length === 0 && rule.threshold !== undefined)
      return `${field}.threshold: only threshold events (${[...THRESHOLD_EVENTS].join(', ')}) take one`;
    if (rule.publisher === 'webhook' && rule.url === undefined)
      return `${field}.url: a webhook rule needs the URL to POST to`;
    if (rule.publisher === 'webhook' && rule.secret === undefined)
      return `${field}.secret: a webhook rule needs a secret (16+ characters) to sign with`;
  }
  for (const [i, s] of n.sites.entries()) {
    if (!isTimeZone(s.timezone))
      return `sites[${i}].timezone: unknown IANA time zone ${s.timezone}`;
  }
  return null;
}

/** Each tariff gives elements or details (R2), and its details compile; the first problem. */
function checkTariffSources(raw: RawNetwork): string | null {
  for (const [i, t] of (raw.tariffs ?? []).entries()) {
    if (t.details === undefined) {
      if (t.elements === undefined) return `tariffs[${i}].elements: is required (or details)`;
      continue;
    }
    if (t.elements !== undefined) return `tariffs[${i}]: give elements or details, not both`;
    try {
      compileDetails(t.details, (field, why) => {
        throw new Error(`tariffs[${i}].${field}: ${why}`);
      });
    } catch (error) {
      return errorMessage(error);
    }
  }
  return null;
}

/** Every tariff compiles for every site time zone (bad restrictions surface at start, not in a worker). */
function checkTariffs(n: Network): string | null {
  const zones = new Set(['UTC', ...n.sites.map((s) => s.timezone)]);
  for (const [i, tariff] of n.tariffs.entries()) {
    const validity = validityRange(tariff);
    if (typeof validity === 'string') return `tariffs[${i}].${validity}`;
    for (const zone of zones) {
      try {
        compileTariff(tariff, zone);
      } catch (error) {
        return `tariffs[${i}]: ${errorMessage(error)}`;
      }
    }
  }
  return null;
}

/**
 * The tariffs one level of resolution names (R3) are never valid at the same instant, as OCPI
 * asks of a connector's tariffs: which one prices a session never depends on list order.
 */
function checkTariffLevels(n: Network): string | null {
  const levels: Array<[string, TariffRef | undefined]> = [
    ['settings.defaultTariff', n.settings.defaultTariff],
    ...n.organizations.flatMap((o, i): Array<[string, TariffRef | undefined]> => [
      [`organizations[${i}].tariff`, o.tariff],
      [`organizations[${i}].roamingTariff`, o.roamingTariff],
    ]),
    ...n.sites.map((s, i): [string, TariffRef | undefined] => [`sites[${i}].tariff`, s.tariff]),
    ...n.chargers.map((c, i): [string, TariffRef | undefined] => [
      `chargers[${i}].tariff`,
      c.tariff,
    ]),
    ...n.ratePlans.map((r, i): [string, TariffRef] => [`ratePlans[${i}].tariff`, r.tariff]),
  ];
  const byId = new Map(n.tariffs.map((t) => [t.id, t]));
  for (const [field, ref] of levels) {
    const ids = tariffIds(ref);
    for (let k = 1; k < ids.length; k++) {
      for (let j = 0; j < k; j++) {
        const a = validityRange(byId.get(ids[j]!)!);
        const b = validityRange(byId.get(ids[k]!)!);
        if (typeof a === 'string' || typeof b === 'string') continue; // checkTariffs has refused it
        const from = overlapStart(a, b);
        if (from !== null)
          return `${field}[${k}]: tariff ${ids[k]} is valid at the same time as ${ids[j]} (${
            from === -Infinity
              ? 'both have no startDateTime'
              : `both at ${new Date(from).toISOString()}`
          }); give them validities that do not overlap`;
      }
    }
  }
  return null;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    Object.freeze(value);
  }
  return value;
}

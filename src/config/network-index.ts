import { validAt } from '../rating/validity.js';
import type {
  Charger,
  Customer,
  Network,
  NotificationRule,
  Organization,
  RatePlan,
  Site,
  Tariff,
  TariffRef,
  Token,
} from './network.js';

/** Lookups over a network, built once per config version (main thread and each worker). */
export interface NetworkIndex {
  readonly network: Network;
  readonly chargers: ReadonlyMap<string, Charger>;
  readonly sites: ReadonlyMap<string, Site>;
  readonly tariffs: ReadonlyMap<string, Tariff>;
  readonly ratePlans: ReadonlyMap<string, RatePlan>;
  readonly customers: ReadonlyMap<string, Customer>;
  readonly tokens: ReadonlyMap<string, Token>;
  readonly organizations: ReadonlyMap<string, Organization>;
  /** N2: the rules selecting each event. */
  readonly rules: ReadonlyMap<string, readonly NotificationRule[]>;
  /**
   * Some rule has a threshold (R7), or a roaming platform an authorized amount (R3): only
   * then are sessions measured against them.
   */
  readonly hasThresholds: boolean;
}

export function indexNetwork(network: Network): NetworkIndex {
  const byId = <T extends { id: string }>(items: readonly T[]) =>
    new Map(items.map((i) => [i.id, i]));
  return {
    network,
    chargers: byId(network.chargers),
    sites: byId(network.sites),
    tariffs: byId(network.tariffs),
    ratePlans: byId(network.ratePlans),
    customers: byId(network.customers),
    // OCPP idTags are case-insensitive in practice (RFID UIDs in hex); keys are upper-cased.
    tokens: new Map(network.tokens.map((t) => [t.id.toUpperCase(), t])),
    organizations: byId(network.organizations),
    rules: rulesByEvent(network.notificationRules),
    hasThresholds:
      network.notificationRules.some((r) => r.threshold !== undefined) ||
      network.organizations.some((o) => o.maxAuthorizedAmount !== undefined),
  };
}

function rulesByEvent(rules: readonly NotificationRule[]): Map<string, NotificationRule[]> {
  const byEvent = new Map<string, NotificationRule[]>();
  for (const rule of rules) {
    for (const event of rule.events) {
      const list = byEvent.get(event);
      if (list === undefined) byEvent.set(event, [rule]);
      else list.push(rule);
    }
  }
  return byEvent;
}

/**
 * The session expirations (S2, S3) in force at a charger: its own, else its site's, else its
 * operator's, else the network's.
 */
export function expirationsAt(
  index: NetworkIndex,
  chargerId: string,
): { readonly readyS: number; readonly ongoingS: number } {
  const charger = index.chargers.get(chargerId);
  const site = charger === undefined ? undefined : index.sites.get(charger.site);
  const operator = site === undefined ? undefined : index.organizations.get(site.operator);
  const { settings } = index.network;
  return {
    readyS:
      charger?.readySessionExpirationS ??
      site?.readySessionExpirationS ??
      operator?.readySessionExpirationS ??
      settings.readySessionExpirationS,
    ongoingS:
      charger?.ongoingSessionExpirationS ??
      site?.ongoingSessionExpirationS ??
      operator?.ongoingSessionExpirationS ??
      settings.ongoingSessionExpirationS,
  };
}

/** The configured max power of a connector, or the network's default for unknown ones. */
export function maxPowerW(index: NetworkIndex, chargerId: string, connectorId: number): number {
  const connector = index.chargers.get(chargerId)?.connectors.find((c) => c.id === connectorId);
  return connector?.maxPowerW ?? index.network.settings.defaultMaxPowerW;
}

/** The ids a tariff reference names, in the order written. */
export function tariffIds(ref: TariffRef | null | undefined): readonly string[] {
  return ref == null ? [] : typeof ref === 'string' ? [ref] : ref;
}

/**
 * Tariff resolution (domain R3) for a session starting at `startTs` (epoch ms), most specific
 * first: the customer's rate plan, the roaming platform's tariff (the customer belongs to a
 * roaming partner or payment-terminal organization with `roamingTariff`), the charger, the
 * site, the site's operator, the network default. A level whose tariffs are none of them
 * valid at `startTs` is passed over. Null when nothing applies: the session is free.
 */
export function resolveTariff(
  index: NetworkIndex,
  chargerId: string,
  customerId: string,
  startTs: number,
): Tariff | null {
  const charger = index.chargers.get(chargerId);
  const customer = index.customers.get(customerId);
  const ratePlanId = customer?.ratePlan;
  const site = charger === undefined ? undefined : index.sites.get(charger.site);
  const levels = [
    ratePlanId === undefined ? undefined : index.ratePlans.get(ratePlanId)?.tariff,
    roamingPlatformOf(index, customerId)?.roamingTariff,
    charger?.tariff,
    site?.tariff,
    site === undefined ? undefined : index.organizations.get(site.operator)?.tariff,
    index.network.settings.defaultTariff,
  ];
  for (const level of levels) {
    // The loader refuses levels with overlapping validities: at most one id here is valid.
    for (const id of tariffIds(level)) {
      const tariff = index.tariffs.get(id);
      if (tariff !== undefined && validAt(tariff, startTs)) return tariff;
    }
  }
  return null;
}

/** The roaming platform (or payment terminal) organization a customer's sessions come through. */
export function roamingPlatformOf(
  index: NetworkIndex,
  customerId: string,
): Organization | undefined {
  const customer = index.customers.get(customerId);
  const organization =
    customer === undefined ? undefined : index.organizations.get(customer.organization);
  return organization?.roamingTariff === undefined ? undefined : organization;
}

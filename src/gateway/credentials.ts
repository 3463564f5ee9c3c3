import { timingSafeEqual } from 'node:crypto';
import { passwordHashOf, type Charger } from '../config/network.js';

export type UpgradeRefusal =
  'unknown_charger' | 'bad_identity' | 'missing_credentials' | 'bad_credentials';

/**
 * Security profile 1 (HTTP Basic, user = the charger's identity). Chargers configured without
 * a password are accepted on identity alone. Compared in constant time on digests, so neither
 * the length nor the content of a password leaks through timing.
 */
export function checkCredentials(
  charger: Charger,
  chargerId: string,
  authorization: string,
): UpgradeRefusal | null {
  const expected =
    charger.passwordHash ??
    (charger.password === undefined ? undefined : passwordHashOf(charger.password));
  if (expected === undefined) return null;
  if (!authorization.startsWith('Basic ')) return 'missing_credentials';
  const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'bad_credentials';
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  const given = Buffer.from(passwordHashOf(password));
  const match = timingSafeEqual(given, Buffer.from(expected));
  return user === chargerId && match ? null : 'bad_credentials';
}

/** Identities usable in a URL and in Basic credentials: no ':' (reliability.md, profile 1). */
export function isValidIdentity(id: string): boolean {
  return id.length > 0 && id.length <= 48 && !/[:\s/?#]/.test(id);
}

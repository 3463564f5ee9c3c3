import { Ajv, type Options } from 'ajv';
import * as ajvFormats from 'ajv-formats';
import { parseInstant } from './time.js';

// ajv-formats is CommonJS with `exports.default`; under NodeNext the callable sits on `.default`.
const addFormats = (ajvFormats as unknown as { default: (ajv: Ajv) => Ajv }).default;

/** RFC 3339 with a time zone, as OCPP requires. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * An Ajv instance with the standard formats (uri, email, …); never coerces types. `date-time`
 * is stricter than RFC 3339 alone: the instant must also be one JavaScript can represent
 * (a leap second `23:59:60` or year 222222017 is refused, not turned into NaN later).
 */
export function createAjv(options: Options = {}): Ajv {
  const ajv = new Ajv({ allErrors: false, coerceTypes: false, ...options });
  addFormats(ajv);
  ajv.addFormat('date-time', {
    type: 'string',
    validate: (s: string) => RFC3339.test(s) && Number.isFinite(parseInstant(s)),
  });
  return ajv;
}

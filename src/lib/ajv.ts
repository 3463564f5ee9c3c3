import { Ajv, type Options } from 'ajv';
import * as ajvFormats from 'ajv-formats';

// ajv-formats is CommonJS with `exports.default`; under NodeNext the callable sits on `.default`.
const addFormats = (ajvFormats as unknown as { default: (ajv: Ajv) => Ajv }).default;

/** An Ajv instance with the standard formats (date-time, uri, …); never coerces types. */
export function createAjv(options: Options = {}): Ajv {
  const ajv = new Ajv({ allErrors: false, coerceTypes: false, ...options });
  addFormats(ajv);
  return ajv;
}

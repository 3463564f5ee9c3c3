import type { ErrorObject, ValidateFunction } from 'ajv';
import { createAjv } from '../lib/ajv.js';
import type { RpcErrorCode } from './rpc.js';

export type Validator = ValidateFunction<Record<string, unknown>>;

/**
 * Compiles the official schemas of one protocol version, once, at start (a schema compiled on
 * the first message is a latency spike). The schema list is the `urn:<Action>.req|conf` set
 * the ocpp-rpc package maintains from the OCA's published JSON schemas.
 */
export function compileSchemas(schemas: ReadonlyArray<{ $id: string }>): Map<string, Validator> {
  // The published schemas use keywords (javaType, comment, …) that strict mode would reject.
  const ajv = createAjv({ strict: false });
  const validators = new Map<string, Validator>();
  for (const { $id, ...schema } of schemas) {
    // Keyed here by their id; compiled without it, as the URN ids (`urn:Authorize.req`) are
    // not resolvable URIs and newer URI libraries refuse them.
    validators.set($id, ajv.compile<Record<string, unknown>>(schema));
  }
  return validators;
}

/**
 * The CALLERROR code for a schema violation, from the keyword that failed: a missing field is
 * an occurrence violation, a wrong JSON type a type violation, a value out of its enum, length
 * or format a property violation, an unknown field a violation of the PDU's formation.
 */
export function violationCode(
  error: ErrorObject | undefined,
  formation: RpcErrorCode,
): RpcErrorCode {
  switch (error?.keyword) {
    case 'required':
    case 'minItems':
    case 'maxItems':
      return 'OccurrenceConstraintViolation';
    case 'type':
      return 'TypeConstraintViolation';
    case 'additionalProperties':
      return formation;
    default:
      return 'PropertyConstraintViolation';
  }
}

export function violationText(error: ErrorObject | undefined): string {
  if (error === undefined) return 'payload does not match the schema';
  const at =
    error.instancePath === '' ? 'payload' : error.instancePath.slice(1).replace(/\//g, '.');
  const params = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties')
    return `${at}: unknown field ${String(params['additionalProperty'])}`;
  if (error.keyword === 'required') return `${at}: missing ${String(params['missingProperty'])}`;
  return `${at}: ${error.message ?? 'invalid'}`;
}

import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { is_date_time } from './date-time.js';
import { OcppError, type OcppErrorCode } from './ocppj.js';

// The official OCPP 1.6 JSON schemas, as shipped by the ocpp-rpc package (ids "urn:<Action>.req";
// stored here under "<Action>.req").
const require = createRequire(import.meta.url);
const ocpp16_schemas = with_official_meter_values(
  require('ocpp-rpc/lib/schemas/ocpp1_6.json') as { $id: string }[],
);
const ocpp201_schemas = require('ocpp-rpc/lib/schemas/ocpp2_0_1.json') as { $id: string }[];

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

interface ArraySchema {
  minItems?: number;
  items: { properties: Record<string, { enum?: string[] } & Partial<ArraySchema>> };
}

/**
 * ocpp-rpc's copy of MeterValues.req differs from the official OCPP 1.6 JSON schema (OCA, with the
 * errata) in three rules, restored here: at least one meterValue (section 6.31, 1..*), at least one
 * sampledValue in each (section 7.33, 1..*), and the unit "Hertz" (errata to section 7.31: the
 * unit of a Frequency sample).
 */
function with_official_meter_values(schemas: { $id: string }[]): { $id: string }[] {
  return schemas.map((schema) => {
    if (schema.$id !== 'urn:MeterValues.req') return schema;
    const copy = structuredClone(schema) as { $id: string; properties: { meterValue: ArraySchema } };
    const meter_value = copy.properties.meterValue;
    meter_value.minItems = 1;
    const sampled_value = meter_value.items.properties.sampledValue as ArraySchema;
    sampled_value.minItems = 1;
    const units = sampled_value.items.properties.unit?.enum;
    if (units !== undefined && !units.includes('Hertz')) units.push('Hertz');
    return copy;
  });
}

/** OCPP-J 1.6 section 4.2.3: which error code a broken schema rule maps to. */
function error_code_of(error: ErrorObject): OcppErrorCode {
  switch (error.keyword) {
    case 'type':
      return 'TypeConstraintViolation';
    case 'required':
    case 'minItems':
    case 'maxItems':
      return 'OccurenceConstraintViolation';
    case 'additionalProperties':
      return 'FormationViolation';
    default:
      return 'PropertyConstraintViolation';
  }
}

export class SchemaValidator {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(schemas: readonly { $id: string }[]) {
    this.ajv = new Ajv({ strict: false, allErrors: false });
    addFormats(this.ajv);
    // The same decision as ajv-formats' "date-time", without garbage per timestamp.
    this.ajv.addFormat('date-time', { type: 'string', validate: is_date_time });
    // Keys "<Action>.req" instead of the schemas' "urn:" ids, which current URI parsers reject.
    for (const { $id, ...schema } of schemas) this.ajv.addSchema(schema, $id.replace(/^urn:/, ''));
  }

  has(schema_id: string): boolean {
    return this.ajv.getSchema(schema_id) !== undefined;
  }

  /** Throws an OcppError naming the field and the rule when the payload breaks the schema. */
  check(schema_id: string, payload: unknown): void {
    let validate = this.compiled.get(schema_id);
    if (validate === undefined) {
      validate = this.ajv.getSchema(schema_id);
      if (validate === undefined) throw new OcppError('NotImplemented', `no schema ${schema_id}`);
      this.compiled.set(schema_id, validate);
    }
    if (validate(payload)) return;
    const first = validate.errors?.[0];
    if (first === undefined) throw new OcppError('FormationViolation', 'payload does not match the schema');
    const field = first.instancePath === '' ? '(payload)' : first.instancePath.slice(1).replaceAll('/', '.');
    const extra =
      first.keyword === 'additionalProperties'
        ? ` (${String((first.params as { additionalProperty?: string }).additionalProperty)})`
        : first.keyword === 'required'
          ? ` (${String((first.params as { missingProperty?: string }).missingProperty)})`
          : '';
    throw new OcppError(error_code_of(first), `${field}: ${first.message ?? 'invalid'}${extra}`, {
      field,
      rule: first.keyword,
    });
  }
}

export const ocpp16_validator = new SchemaValidator(ocpp16_schemas);
export const ocpp201_validator = new SchemaValidator(ocpp201_schemas);

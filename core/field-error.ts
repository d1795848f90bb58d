/**
 * Bad input named precisely: the field (a path such as `elements[0].price_components[1].price`)
 * and the rule it broke. Each boundary turns it into its own answer: HTTP 400 with the field, a
 * CLI line naming file and field, an OCPP CALLERROR.
 */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly rule: string,
  ) {
    super(`${field}: ${rule}`);
    this.name = new.target.name;
  }
}

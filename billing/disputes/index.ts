// The public surface of disputes: cases and their workflow, the investigation, signed meter
// values (OCMF), meter keys, evidence bundles and resolutions.

export { type Bundle, generate_bundle, stored_bundle, verify_bundle } from './bundle.js';
export {
  type Actor,
  add_message,
  type CaseView,
  case_audit,
  case_by_token,
  case_messages,
  claimant_view,
  type DisputeDeps,
  get_case,
  list_cases,
  move_case,
  NotFoundError,
  open_case,
  session_token_of,
  validate_open_request,
} from './cases.js';
export { type Finding, investigate } from './investigate.js';
export { keys_for, list_meter_keys, register_meter_key, validate_meter_key } from './meter-keys.js';
export { curve_of_algorithm, parse_ocmf, verify_ocmf } from './ocmf.js';
export { resolve_case, validate_resolution } from './resolve.js';
export { verify_meter_value } from './signed-values.js';
export {
  type DeadlineRules,
  DisputeStateError,
  deadline_ms,
  default_deadline_rules,
  dispute_states,
  parse_deadline_rules,
} from './workflow.js';

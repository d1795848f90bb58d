import type { ChargePointProfile } from '../core/charge-points.js';
import type { TokenDecision } from '../core/tokens.js';

/**
 * Chargers with a built-in payment terminal start a session themselves once their terminal has
 * authorized a card; the token they present is the terminal's authorization reference (the
 * reference the terminal provider's capture confirmation, OCPI 2.3 FinancialAdviceConfirmation
 * authorization_reference, names later). The token store never heard of it, so without this it
 * would be Invalid (or Accepted only on a free-vend site). It is Accepted, and the session tagged
 * as a terminal session, only where all of this holds:
 * - the operator flagged the charge point as having a payment terminal
 *   (ChargePointProfile.payment_terminal, with the prefix its terminal's references begin with);
 * - the token has the reference's form: that prefix, then 1 or more of A-Z a-z 0-9 . _ : -, at most
 *   36 characters (OCPP 2.0.1 IdTokenType.idToken is an identifierString of 36, and so is OCPI's
 *   authorization_reference CiString(36)); OCPP 1.6 idTags are CiString20Type (1.6 sections 7.15,
 *   7.28), which its schema already enforces;
 * - OCPP 2.0.1: the charger says so. OCPP 2.0.1 has no IdTokenEnumType for a payment terminal
 *   (part 2, IdTokenEnumType: Central, eMAID, ISO14443, ISO15693, KeyCode, Local, MacAddress,
 *   NoAuthorization), but IdTokenType.additionalInfo carries AdditionalInfoType items whose `type`
 *   "is a custom type, so the implementation needs to be agreed upon by all involved parties"
 *   (part 2, AdditionalInfoType). Our agreement: an item { type: "PaymentTerminal",
 *   additionalIdToken: <the same reference> } (IdToken is case insensitive, so compared so).
 *   An idToken of type NoAuthorization is never a reference. OCPP 1.6's IdToken is a bare
 *   string (section 7.28): there the form alone tells.
 * A token the store knows keeps the store's decision: the prefix keeps references apart from cards.
 */
export const payment_terminal_info_type = 'PaymentTerminal';
export const terminal_reference_length_max = 36;
const reference_body_pattern = /^[A-Za-z0-9._:-]+$/;

/** An idToken as the charger presented it: 2.0.1 IdTokenType's type and additionalInfo; 1.6 has neither. */
export interface PresentedToken {
  id_token: string;
  protocol: 'ocpp1.6' | 'ocpp2.0.1';
  type?: string;
  additional_info?: readonly { additionalIdToken?: unknown; type?: unknown }[];
}

/** Whether the token is a terminal reference on a charger with this terminal setting (pure). */
export function is_terminal_reference(
  terminal: ChargePointProfile['payment_terminal'],
  token: PresentedToken,
): boolean {
  if (terminal === undefined) return false;
  const { id_token } = token;
  const prefix = terminal.reference_prefix;
  if (id_token.length <= prefix.length || id_token.length > terminal_reference_length_max) return false;
  if (id_token.slice(0, prefix.length).toUpperCase() !== prefix.toUpperCase()) return false;
  if (!reference_body_pattern.test(id_token.slice(prefix.length))) return false;
  if (token.protocol === 'ocpp1.6') return true;
  if (token.type === 'NoAuthorization') return false;
  return (token.additional_info ?? []).some(
    (item) =>
      item.type === payment_terminal_info_type &&
      typeof item.additionalIdToken === 'string' &&
      item.additionalIdToken.toUpperCase() === id_token.toUpperCase(),
  );
}

/**
 * The decision for a presented token: the store's for a token it knows; Accepted as a terminal
 * session for a terminal reference on a flagged charger; else Accepted only when unknown tokens
 * are (OCPP_ACCEPT_UNKNOWN_TOKENS), Invalid otherwise. The charger's profile is read (through its
 * cache) only for tokens the store does not know, so the common path costs nothing more.
 */
export async function decide_presented_token(
  token: PresentedToken,
  deps: {
    store_decision: (uid: string) => Promise<TokenDecision>;
    terminal_of: () => Promise<ChargePointProfile['payment_terminal']>;
    accept_unknown: boolean;
  },
): Promise<TokenDecision> {
  const stored = await deps.store_decision(token.id_token);
  if (stored.token !== undefined) return stored;
  if (is_terminal_reference(await deps.terminal_of(), token)) return { status: 'Accepted', terminal: true };
  return { status: deps.accept_unknown ? 'Accepted' : 'Invalid' };
}

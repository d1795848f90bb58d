import { describe, expect, it } from 'vitest';
import type { TokenDecision, TokenRecord } from '../core/tokens.js';
import { decide_presented_token, is_terminal_reference, type PresentedToken } from './payment-terminal.js';

const terminal = { reference_prefix: 'TERM-' };
const marked = (id_token: string, extra: Partial<PresentedToken> = {}): PresentedToken => ({
  id_token,
  protocol: 'ocpp2.0.1',
  type: 'Local',
  additional_info: [{ additionalIdToken: id_token, type: 'PaymentTerminal' }],
  ...extra,
});

describe('payment terminal references', () => {
  it('recognises a reference of the charger prefix, marked PaymentTerminal on OCPP 2.0.1', () => {
    expect(is_terminal_reference(terminal, marked('TERM-7F3A9C'))).toBe(true);
    // IdToken is case insensitive (2.0.1 IdTokenType, 1.6 CiString): so are the prefix and the marker.
    expect(is_terminal_reference(terminal, marked('term-7f3a9c'))).toBe(true);
    expect(
      is_terminal_reference(
        terminal,
        marked('TERM-7F3A9C', {
          additional_info: [{ additionalIdToken: 'term-7f3a9c', type: 'PaymentTerminal' }],
        }),
      ),
    ).toBe(true);
    expect(is_terminal_reference(terminal, { id_token: 'TERM-5521', protocol: 'ocpp1.6' })).toBe(true);
  });

  it('refuses what is not one: no flag, another prefix, the bare prefix, odd characters, too long, unmarked 2.0.1', () => {
    expect(is_terminal_reference(undefined, marked('TERM-7F3A9C'))).toBe(false);
    expect(is_terminal_reference(terminal, marked('CARD-7F3A9C'))).toBe(false);
    expect(is_terminal_reference(terminal, marked('TERM-'))).toBe(false);
    expect(is_terminal_reference(terminal, marked('TERM-7F 3A'))).toBe(false);
    expect(is_terminal_reference(terminal, marked('TERM-ä1'))).toBe(false);
    expect(is_terminal_reference(terminal, marked(`TERM-${'A'.repeat(32)}`))).toBe(false);
    expect(is_terminal_reference(terminal, marked(`TERM-${'A'.repeat(31)}`))).toBe(true);
    // OCPP 2.0.1 without the agreed AdditionalInfoType, with another type, another token, or NoAuthorization.
    expect(
      is_terminal_reference(terminal, { id_token: 'TERM-7F3A9C', protocol: 'ocpp2.0.1', type: 'Local' }),
    ).toBe(false);
    expect(
      is_terminal_reference(
        terminal,
        marked('TERM-7F3A9C', { additional_info: [{ additionalIdToken: 'TERM-7F3A9C', type: 'Receipt' }] }),
      ),
    ).toBe(false);
    expect(
      is_terminal_reference(
        terminal,
        marked('TERM-7F3A9C', {
          additional_info: [{ additionalIdToken: 'TERM-0000', type: 'PaymentTerminal' }],
        }),
      ),
    ).toBe(false);
    expect(is_terminal_reference(terminal, marked('TERM-7F3A9C', { type: 'NoAuthorization' }))).toBe(false);
  });

  it("keeps the store's decision for a token it knows and reads the charger's flag only for unknown ones", async () => {
    const card: TokenRecord = {
      uid: 'TERM-CARD1',
      type: 'RFID',
      contract_id: 'DE-EVR-C1',
      country_code: 'DE',
      party_id: 'EVR',
      valid: false,
      whitelist: 'ALLOWED',
      source: 'operator',
      last_updated: '2026-12-01T00:00:00Z',
    };
    let profile_reads = 0;
    const deps = (accept_unknown: boolean, flagged = true) => ({
      store_decision: async (uid: string): Promise<TokenDecision> =>
        uid === card.uid ? { status: 'Blocked', token: card } : { status: 'Invalid' },
      terminal_of: async () => {
        profile_reads += 1;
        return flagged ? terminal : undefined;
      },
      accept_unknown,
    });
    expect(await decide_presented_token(marked('TERM-CARD1'), deps(false))).toEqual({
      status: 'Blocked',
      token: card,
    });
    expect(profile_reads).toBe(0);
    expect(await decide_presented_token(marked('TERM-7F3A9C'), deps(false))).toEqual({
      status: 'Accepted',
      terminal: true,
    });
    // Free vend does not make a reference a terminal session where there is no terminal.
    expect(await decide_presented_token(marked('TERM-7F3A9C'), deps(true, false))).toEqual({
      status: 'Accepted',
    });
    expect(await decide_presented_token(marked('TERM-7F3A9C'), deps(false, false))).toEqual({
      status: 'Invalid',
    });
    expect(await decide_presented_token(marked('CARD-1'), deps(false))).toEqual({ status: 'Invalid' });
    expect(profile_reads).toBe(4);
  });
});

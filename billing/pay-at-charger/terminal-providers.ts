import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { FieldError } from '../../core/field-error.js';
import type { Queryable } from '../ledger.js';

/**
 * Payment terminal providers, and the credential each confirms its captures with. The operator
 * registers a provider and is shown its token once; the ledger keeps only the token's SHA-256.
 * The token names its provider (`tp.<id>.<secret>`), so a check reads one row and compares the
 * digests in constant time. It is sent as `Authorization: Bearer <token>`, never in a URL, and it
 * is not the operator token: a terminal provider can confirm captures and nothing else.
 */
export interface TerminalProvider {
  id: string;
  name: string;
  created_at_ms: number;
  revoked_at_ms: number | null;
}

const id_pattern = /^[a-z0-9_-]{1,32}$/;
const token_pattern = /^tp\.([a-z0-9_-]{1,32})\.([A-Za-z0-9_-]{43})$/;

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Registers a provider (or gives an existing one a new token, revoking the old); returns the token once. */
export async function register_terminal_provider(
  q: Queryable,
  input: { id: unknown; name: unknown },
  now_ms = Date.now(),
): Promise<{ provider: TerminalProvider; token: string }> {
  if (typeof input.id !== 'string' || !id_pattern.test(input.id))
    throw new FieldError('id', 'must be 1 to 32 of a-z, 0-9, _ and -');
  if (typeof input.name !== 'string' || input.name.length === 0 || input.name.length > 200)
    throw new FieldError('name', 'must be a string of 1 to 200 characters');
  const token = `tp.${input.id}.${randomBytes(32).toString('base64url')}`;
  const [provider] = await q.query<TerminalProvider>(
    `INSERT INTO pay_terminal_providers (id, name, token_sha256, created_at_ms) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, token_sha256 = EXCLUDED.token_sha256,
       created_at_ms = EXCLUDED.created_at_ms, revoked_at_ms = NULL
     RETURNING id, name, created_at_ms, revoked_at_ms`,
    [input.id, input.name, digest(token).toString('hex'), now_ms],
  );
  return { provider: provider!, token };
}

/** The provider whose valid token the Authorization header carries, or undefined. */
export async function terminal_provider_of(
  q: Queryable,
  authorization: string | undefined,
): Promise<TerminalProvider | undefined> {
  const match = /^Bearer (\S{1,120})$/.exec(authorization ?? '');
  const parts = match === null ? null : token_pattern.exec(match[1]!);
  if (parts === null) return undefined;
  const [row] = await q.query<TerminalProvider & { token_sha256: string }>(
    `SELECT id, name, created_at_ms, revoked_at_ms, token_sha256 FROM pay_terminal_providers
     WHERE id = $1 AND revoked_at_ms IS NULL`,
    [parts[1]],
  );
  if (row === undefined) return undefined;
  const held = Buffer.from(row.token_sha256, 'hex');
  const given = digest(match![1]!);
  if (held.length !== given.length || !timingSafeEqual(held, given)) return undefined;
  const { token_sha256: _, ...provider } = row;
  return provider;
}

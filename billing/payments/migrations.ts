import type { LedgerMigration } from '../migrations.js';

/** The payments part of the ledger schema: versions 100 to 199. */
export const payment_migrations: readonly LedgerMigration[] = [];

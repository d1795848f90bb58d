import type { LedgerMigration } from '../migrations.js';

/** The disputes part of the ledger schema: versions 200 to 299. */
export const dispute_migrations: readonly LedgerMigration[] = [];

import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { free_port } from '../../core/ports.js';

const bin = '/usr/lib/postgresql/15/bin';

/**
 * A private PostgreSQL 15 server (Debian package postgresql) on a free port with its cluster in a
 * temp dir. initdb and postgres refuse to run as root, so both run as the postgres user; trust
 * authentication on 127.0.0.1 for the superuser `evrate`.
 */
export async function start_test_postgres(): Promise<{ url: string; dispose(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'evrate-pg-'));
  const data = path.join(dir, 'data');
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  const as_postgres = (command: string, args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', path.join(bin, command), ...args], { stdio: 'pipe' });
  as_postgres('initdb', ['-D', data, '-A', 'trust', '-U', 'evrate', '--no-sync']);
  const port = await free_port();
  as_postgres('pg_ctl', [
    '-D',
    data,
    '-w',
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`,
    '-l',
    path.join(dir, 'log'),
    'start',
  ]);
  return {
    url: `postgres://evrate@127.0.0.1:${port}/postgres`,
    async dispose() {
      try {
        as_postgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

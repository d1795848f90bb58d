#!/usr/bin/env node
// Installs what `npm start` and `npm test` need when it is missing, then builds dist/.
//   node scripts/setup.mjs start   npm packages, nats-server (when NATS_URL is unset)
//   node scripts/setup.mjs test    npm packages, nats-server, clickhouse-server, jsonnet, postgresql,
//                                  poppler-utils, libxml2-utils, chromium, zookeeper
// Plain Node with no dependencies: it runs before node_modules exists.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mode = process.argv[2] ?? 'start';

function run(command, args, options = {}) {
  process.stderr.write(`setup: ${command} ${args.join(' ')}\n`);
  execFileSync(command, args, { stdio: 'inherit', cwd: root, ...options });
}

function npm_packages() {
  const installed = path.join(root, 'node_modules', '.package-lock.json');
  const lock = path.join(root, 'package-lock.json');
  if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs) return;
  // `npm install` with the committed lock file rather than `npm ci`: lock files written without
  // registry addresses (omit-lockfile-registry-resolved) list other platforms' optional binaries
  // in a way `npm ci` reports as out of sync.
  run('npm', ['install', '--no-audit', '--no-fund']);
}

const debian = [
  { binary: '/usr/sbin/nats-server', package: 'nats-server', when: ['start', 'test'] },
  { binary: '/usr/sbin/clickhouse-server', package: 'clickhouse-server', when: ['test'] },
  { binary: '/usr/bin/jsonnet', package: 'jsonnet', when: ['test'] },
  // The TLS test makes its own certificate.
  { binary: '/usr/bin/openssl', package: 'openssl', when: ['test'] },
  // Billing tests run the ledger on a private PostgreSQL server too, and check invoice PDFs
  // (pdftoppm, pdftotext) and UBL e-invoices (xmllint).
  { binary: '/usr/lib/postgresql/15/bin/initdb', package: 'postgresql', when: ['test'] },
  { binary: '/usr/bin/pdftoppm', package: 'poppler-utils', when: ['test'] },
  { binary: '/usr/bin/xmllint', package: 'libxml2-utils', when: ['test'] },
  // Pay-at-charger pages are tested in a real browser (playwright-core drives Debian's Chromium);
  // the replicated ClickHouse test needs a ZooKeeper.
  { binary: '/usr/bin/chromium', package: 'chromium', when: ['test'] },
  { binary: '/usr/share/zookeeper/bin/zkServer.sh', package: 'zookeeper', when: ['test'] },
];

function debian_packages() {
  const wanted = debian.filter(
    (d) =>
      d.when.includes(mode) &&
      !existsSync(d.binary) &&
      !(d.package === 'nats-server' && mode === 'start' && process.env.NATS_URL),
  );
  if (wanted.length === 0) return;
  const names = wanted.map((d) => d.package);
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      `setup: missing Debian packages ${names.join(', ')}; run: sudo apt-get install -y ${names.join(' ')}\n`,
    );
    process.exit(1);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], { env });
}

npm_packages();
debian_packages();
run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);

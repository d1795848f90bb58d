#!/usr/bin/env node
// Builds every dashboards/<name>.jsonnet into <out>/<name>.json with the `jsonnet` binary
// (Debian package jsonnet), the library path set to dashboards/lib.
//   node dashboards/build.mjs              writes dashboards/build/
//   node dashboards/build.mjs --out DIR    writes DIR/ (the test builds afresh and compares)
// Plain Node with no dependencies, so `npm run dashboards` needs no compile step. The built JSON
// is committed: Grafana users need neither jsonnet nor this repository's tooling.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dashboards_dir = path.dirname(fileURLToPath(import.meta.url));
const jsonnet_binary = process.env.JSONNET ?? '/usr/bin/jsonnet';
// A dashboard source is a few kB; anything near this is a runaway evaluation.
const output_bytes_max = 8 * 1024 * 1024;

function parse_args(argv) {
  const out_index = argv.indexOf('--out');
  return { out_dir: out_index >= 0 ? path.resolve(argv[out_index + 1]) : path.join(dashboards_dir, 'build') };
}

export function dashboard_sources() {
  return readdirSync(dashboards_dir)
    .filter((name) => name.endsWith('.jsonnet'))
    .sort();
}

export function build_dashboards(out_dir) {
  if (!existsSync(jsonnet_binary)) {
    throw new Error(`${jsonnet_binary} not found; install it with: apt-get install -y jsonnet`);
  }
  mkdirSync(out_dir, { recursive: true });
  // Stale output of a removed source would still be provisioned into Grafana.
  for (const name of readdirSync(out_dir)) if (name.endsWith('.json')) rmSync(path.join(out_dir, name));
  const built = [];
  for (const source of dashboard_sources()) {
    const text = execFileSync(
      jsonnet_binary,
      ['-J', path.join(dashboards_dir, 'lib'), path.join(dashboards_dir, source)],
      { encoding: 'utf8', maxBuffer: output_bytes_max },
    );
    // Re-serialized so the committed files do not depend on the jsonnet version's layout.
    const target = path.join(out_dir, source.replace(/\.jsonnet$/, '.json'));
    writeFileSync(target, `${JSON.stringify(JSON.parse(text), null, 2)}\n`);
    built.push(target);
  }
  return built;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { out_dir } = parse_args(process.argv.slice(2));
  for (const file of build_dashboards(out_dir))
    process.stdout.write(`${path.relative(process.cwd(), file)}\n`);
}

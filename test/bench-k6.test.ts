import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { project_root } from '../core/paths.js';

describe('bench/k6/throughput.js', () => {
  it('type-checks against @types/k6', () => {
    const tsc = path.join(project_root, 'node_modules', 'typescript', 'bin', 'tsc');
    const run = spawnSync(process.execPath, [tsc, '-p', 'bench/k6/tsconfig.json'], {
      cwd: project_root,
      encoding: 'utf8',
    });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project root, found from this file whether it runs from source (core/) or from the build
 * (dist/core/): the nearest folder above with package.json.
 */
function find_root(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('package.json not found above core/paths');
    dir = parent;
  }
}

export const project_root = find_root();

/** A file shipped with the project (for example schemas/events.proto), by its path from the root. */
export function project_file(relative: string): string {
  return path.join(project_root, relative);
}

/**
 * The compiled JavaScript of a module, for code that needs a file to hand to another thread
 * (piscina workers). Tests run from TypeScript sources, so they use the build in dist/.
 */
export function built_module(relative_js: string): string {
  return path.join(project_root, 'dist', relative_js);
}

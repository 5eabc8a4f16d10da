// Where `muxd serve` finds its site when neither --root nor MUXD_ROOT says. In a clone, and in
// any folder that has one, that is ./public, as it always was. An installed `muxd` run from some
// other folder has no ./public there, and it used to stop with "--root ./public: no such
// directory"; it now serves the small site shipped in the package (the landing page with the live
// panel), so `muxd serve` works from any folder. Anything named `public` in the working
// directory, even a file or a broken link, still wins, so the start checks report it as before
// instead of muxd quietly serving something else.
import { lstatSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The public/ that ships beside dist/ (this file is dist/src/server/default-root.js). */
export const SHIPPED_ROOT = fileURLToPath(new URL('../../../public', import.meta.url));

/** The working directory's own site, written as today's default so messages read the same. */
export const LOCAL_ROOT = './public';

/** An entry of that name is there; one that cannot be looked at (EACCES) counts as there too. */
function exists(p: string): boolean {
  try {
    return lstatSync(p, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return true;
  }
}

/**
 * The --root to use when none was given: `./public` when the working directory has an entry of
 * that name, else the absolute path of the site shipped with muxd.
 */
export function defaultRoot(cwd: string = process.cwd(), has: (p: string) => boolean = exists): string {
  return has(path.join(cwd, 'public')) ? LOCAL_ROOT : SHIPPED_ROOT;
}

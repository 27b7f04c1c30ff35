// Bundles the viewer for the browser; the API serves apps/viewer/dist at "/". No CDN at run time.
// The bundle is type-checked first (tsc --noEmit), since esbuild only strips types.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' });
} catch {
  console.error('viewer: type errors (above)');
  process.exit(1);
}
mkdirSync(out, { recursive: true });
cpSync(join(here, 'public'), out, { recursive: true });
await build({
  entryPoints: [join(here, 'src/main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  sourcemap: true,
  minify: true,
  outfile: join(out, 'viewer.js'),
  logLevel: 'warning',
});

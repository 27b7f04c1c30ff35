// Runs one benchmark: bundles bench/<name>.ts with esbuild (workspace packages resolve to their
// built dist/, so run `npm run build` first; `npm run bench:*` does) and runs it with node.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const name = process.argv[2];
if (!name) {
  console.error('usage: node bench/run.mjs <name> [args...]');
  process.exit(2);
}
const outfile = join(root, 'node_modules/.cache/tilefarm-bench', `${name}.cjs`);
await build({
  entryPoints: [join(root, 'bench', `${name}.ts`)],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  outfile,
  logLevel: 'warning',
});
const result = spawnSync(process.execPath, [outfile, ...process.argv.slice(3)], { stdio: 'inherit' });
process.exit(result.status ?? 1);

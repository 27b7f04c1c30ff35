// Runs one benchmark: bundles every bench/*.ts with esbuild (a bench may spawn another, e.g. the
// naive server) into node_modules/.cache/tilefarm-bench/, and runs bench/<name>.ts with node.
// Workspace packages resolve to their built dist/: `npm run bench:*` builds first.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const name = process.argv[2];
if (!name) {
  console.error('usage: node bench/run.mjs <name> [args...]');
  process.exit(2);
}
const outdir = join(root, 'node_modules/.cache/tilefarm-bench');
const entries = readdirSync(join(root, 'bench')).filter((f) => f.endsWith('.ts'));
await build({
  entryPoints: entries.map((f) => join(root, 'bench', f)),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  outdir,
  outExtension: { '.js': '.cjs' },
  logLevel: 'warning',
});
const result = spawnSync(process.execPath, [join(outdir, `${name}.cjs`), ...process.argv.slice(3)], { stdio: 'inherit' });
process.exit(result.status ?? 1);

// Runs one benchmark: bundles every bench/*.ts with esbuild (a bench may spawn another, e.g. the
// naive server) into node_modules/.cache/tilefarm-bench/, and runs bench/<name>.ts with node.
// Workspace packages resolve to their built dist/: `npm run bench:*` builds first.
// The bench process runs with the malloc settings every tilefarm process runs with (an operator's
// own GLIBC_TUNABLES wins, as in the launcher): a bench that renders or decodes in process measures
// what a worker does, and its baselines run under the same settings. Without them, bench:zarr's
// 64³ runs took 15-42 page faults per tile (~15 µs each on this VM) where a worker takes ~1.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MALLOC_TUNABLES } from '../packages/config/dist/index.js';

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
const env = { ...process.env, GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? MALLOC_TUNABLES };
const result = spawnSync(process.execPath, [join(outdir, `${name}.cjs`), ...process.argv.slice(3)], { stdio: 'inherit', env });
process.exit(result.status ?? 1);

// Builds the C pixel kernels (pixel-kernels.c) with node-gyp, as part of `npm run build`.
//
// node-gyp comes with npm; Node's headers with Node itself (Debian's nodejs at /usr, the official
// builds and images at their prefix), so nothing is downloaded. Without a C compiler the build says
// so and goes on: the renderer then uses the JavaScript kernels (the same bytes, slower), and the
// worker logs which it uses. Skipped when the addon is newer than its sources.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const addon = join(here, 'build/Release/pixel_kernels.node');
const sources = ['pixel-kernels.c', 'binding.gyp'].map((name) => join(here, name));

const builtAt = existsSync(addon) ? statSync(addon).mtimeMs : 0;
if (sources.every((source) => statSync(source).mtimeMs < builtAt)) process.exit(0);

const nodeGyp = [process.env.npm_config_node_gyp, join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')].find((path) => path && existsSync(path));
const prefix = resolve(dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir || (existsSync(join(prefix, 'include/node/node_api.h')) ? prefix : undefined);

function giveUp(reason) {
  console.warn(`[build] the native pixel kernels were not built (${reason}); renders use the JavaScript kernels, 3-4x slower at compositing. Install a C compiler and make (Debian: apt-get install -y g++ make python3) and build again.`);
  process.exit(0);
}

if (!nodeGyp) giveUp("npm's node-gyp was not found");
if (!nodedir) giveUp(`Node's headers were not found under ${prefix}/include/node`);
const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`, '--loglevel=error'], { cwd: here, encoding: 'utf8' });
if (result.status !== 0) {
  const lines = `${result.stderr ?? ''}\n${result.stdout ?? ''}\n${result.error ?? ''}`.split('\n').map((line) => line.trim());
  // node-gyp ends with version lines and "not ok": the first line naming an error says what went wrong.
  giveUp(`node-gyp: ${lines.find((line) => /error/i.test(line) && !/not ok$/.test(line)) ?? lines.filter(Boolean).slice(-1)[0]}`);
}

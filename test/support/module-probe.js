// Preloaded into an app process (NODE_OPTIONS=--require) by test/integration/library-doors.test.ts:
// when the process exits, writes every module it loaded to $MODULE_PROBE_DIR/<app>.json.
const { writeFileSync } = require('node:fs');
const { basename, dirname, join } = require('node:path');

const dir = process.env.MODULE_PROBE_DIR;
if (dir) {
  process.on('exit', () => {
    const app = basename(dirname(dirname(process.argv[1] ?? 'unknown/dist/x')));
    writeFileSync(join(dir, `${app}-${process.pid}.json`), JSON.stringify(Object.keys(require.cache)));
  });
}

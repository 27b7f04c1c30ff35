import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { uniquePrefix } from '../support/redis';
import { TestSystem } from '../support/system';
import { TestViewer } from '../support/socket-client';

// A process that does not need a library does not load it: the API and the gateways never render,
// so they never load sharp (nor the worker's memory arena); only the API shows the queue dashboard (bull-board); with local storage
// nothing loads the AWS SDK (start time, memory, and its Node-version warning on every start).
// Checked on the real built processes after they have served tiles over HTTP and the socket.

const DATASET = { id: 'doors', width: 300, height: 300, sizeZ: 2, tileSize: 256 as const };
const SPEC = { channels: [{ index: 0, color: '#ffffff', window: [0, 4000] as [number, number] }], format: 'png' as const };

describe('one door per library', () => {
  const probeDir = mkdtempSync(join(tmpdir(), 'tilefarm-probe-'));
  let modules: Map<string, string[]>;

  beforeAll(async () => {
    const system = await TestSystem.start({
      workers: 1,
      datasets: [DATASET],
      env: { NODE_OPTIONS: `--require ${resolve(__dirname, '../support/module-probe.js')}`, MODULE_PROBE_DIR: probeDir, ADMIN_TOKEN: 'a-long-enough-admin-token' },
    });
    try {
      const res = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(SPEC) });
      const specId = ((await res.json()) as { id: string }).id;
      expect((await fetch(`${system.apiUrl}/v1/tiles/${DATASET.id}/${specId}/0/0/0/0/0.png`)).status).toBe(200);
      const viewer = new TestViewer(system.gatewayUrl(0));
      try {
        await viewer.connected();
        const ack = await viewer.request({ dataset: DATASET.id, spec: specId, tiles: [{ level: 0, z: 1, t: 0, x: 1, y: 1 }] });
        if (!ack.ok) throw new Error(ack.error.message);
        await viewer.waitFor([...ack.ready, ...ack.pending].map((t) => t.key));
      } finally {
        viewer.close();
      }
    } finally {
      await system.stop();
    }
    modules = new Map();
    for (const f of readdirSync(probeDir)) {
      const app = f.replace(/-\d+\.json$/, '');
      modules.set(app, JSON.parse(readFileSync(join(probeDir, f), 'utf8')) as string[]);
    }
  }, 90_000);
  afterAll(() => rmSync(probeDir, { recursive: true, force: true }));

  const loads = (app: string, library: string) => {
    const list = modules.get(app);
    if (!list) throw new Error(`no module list from ${app} (got ${[...modules.keys()].join(', ')})`);
    return list.some((m) => m.includes(`/node_modules/${library}/`));
  };

  it('the worker loads sharp (the probe sees libraries), the API and the gateway do not', () => {
    expect(loads('worker', 'sharp')).toBe(true);
    expect(loads('api', 'sharp')).toBe(false);
    expect(loads('gateway', 'sharp')).toBe(false);
  });

  it('the worker loads the C pixel kernels (packages/render/native), the API and the gateway do not', () => {
    const addon = (app: string) => modules.get(app)!.some((m) => m.endsWith('/native/build/Release/pixel_kernels.node'));
    expect(addon('worker')).toBe(true);
    expect(addon('api')).toBe(false);
    expect(addon('gateway')).toBe(false);
  });

  it('the worker loads its memory arena\'s allocator (@thi.ng/malloc), the API and the gateway do not', () => {
    expect(loads('worker', '@thi.ng/malloc')).toBe(true);
    expect(loads('api', '@thi.ng/malloc')).toBe(false);
    expect(loads('gateway', '@thi.ng/malloc')).toBe(false);
  });

  it('only the API loads the queue dashboard', () => {
    expect(loads('api', '@bull-board/api')).toBe(true);
    expect(loads('gateway', '@bull-board/api')).toBe(false);
    expect(loads('worker', '@bull-board/api')).toBe(false);
  });

  it('with local storage no process loads the AWS SDK: API, gateway, worker, and the ingest CLI', () => {
    for (const app of ['api', 'gateway', 'worker']) expect([app, loads(app, '@aws-sdk/client-s3')]).toEqual([app, false]);
    // The CLI, run to a failure (a missing file) after it has opened storage and Redis.
    const probe = mkdtempSync(join(tmpdir(), 'tilefarm-probe-cli-'));
    try {
      const cli = spawnSync(process.execPath, [resolve(__dirname, '../../apps/ingest/dist/main.js'), join(probe, 'missing.tif'), '--id', 'nope'], {
        env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: `--require ${resolve(__dirname, '../support/module-probe.js')}`, MODULE_PROBE_DIR: probe, STORAGE: 'local', DATA_DIR: join(probe, 'data'), REDIS_PREFIX: uniquePrefix('doors') },
        encoding: 'utf8',
      });
      expect(cli.stderr).toMatch(/nothing was published/);
      const list = JSON.parse(readFileSync(join(probe, readdirSync(probe).find((f) => f.startsWith('ingest-'))!), 'utf8')) as string[];
      expect(list.some((m) => m.includes('/node_modules/zod/'))).toBe(true); // the probe sees the CLI's libraries
      expect(list.filter((m) => m.includes('/node_modules/@aws-sdk/'))).toEqual([]);
    } finally {
      rmSync(probe, { recursive: true, force: true });
    }
  });

  it('a process that opens S3 storage does load it (so the check above can fail)', () => {
    const script = `
      const storage = require(${JSON.stringify(resolve(__dirname, '../../packages/storage/dist/index.js'))});
      const sdk = () => Object.keys(require.cache).some((m) => m.includes('/node_modules/@aws-sdk/client-s3/'));
      const local = sdk();
      storage.openObjectStore({ kind: 's3', bucket: 'b', region: 'us-east-1', endpoint: 'http://127.0.0.1:9' });
      console.log(JSON.stringify({ local, s3: sdk() }));`;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
    expect(JSON.parse(run.stdout.trim())).toEqual({ local: false, s3: true });
  });
});

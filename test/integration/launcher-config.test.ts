import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { REDIS_URL, dropPrefix, uniquePrefix } from '../support/redis';
import { freePort } from '../support/system';
import { TestViewer } from '../support/socket-client';

// Issue 11 items 13, 14, 15: `npm start` (the launcher) reads `.env` with the environment winning;
// changing PORT / GATEWAY_PORT alone points announced tile URLs and the viewer's gateway at this
// instance (never at :8080/:8081, never at a request's Host header); a local-storage deployment
// does not load the AWS SDK (no Node-version warning).

const ROOT = resolve(dirname(require.resolve('@tilefarm/api/package.json')), '../..');

function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((done, fail) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

async function waitFor(url: string, timeoutMs: number, output: string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready:\n${output.join('').slice(-3000)}`);
}

describe('npm start with changed ports and a .env file', () => {
  const prefix = uniquePrefix('launch');
  let dir: string;
  let apiPort: number;
  let gatewayPort: number;
  let launcher: ReturnType<typeof spawn>;
  const output: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tilefarm-launch-'));
    apiPort = await freePort();
    gatewayPort = await freePort();
    const wrongPort = await freePort();
    // The file sets everything; the environment overrides PORT (the environment wins).
    writeFileSync(
      join(dir, '.env'),
      [`# a comment`, `PORT=${wrongPort}`, `GATEWAY_PORT=${gatewayPort}`, 'WORKERS=1', 'STORAGE=local', `DATA_DIR=${join(dir, 'data')}`, `REDIS_URL=${REDIS_URL}`, `REDIS_PREFIX=${prefix}`, 'LOG_LEVEL=warn', 'DEMO_DATASET="true"'].join('\n'),
    );
    launcher = spawn(process.execPath, [join(ROOT, 'apps/launcher/dist/main.js')], { cwd: dir, env: { PATH: process.env.PATH ?? '', PORT: String(apiPort) }, stdio: ['ignore', 'pipe', 'pipe'] });
    launcher.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
    launcher.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
    await waitFor(`http://127.0.0.1:${apiPort}/readyz`, 60_000, output);
    await waitFor(`http://127.0.0.1:${gatewayPort}/healthz`, 30_000, output);
  }, 120_000);

  afterAll(async () => {
    if (launcher && launcher.exitCode === null) {
      const exited = new Promise((r) => launcher.once('exit', r));
      launcher.kill('SIGTERM');
      await exited;
    }
    await dropPrefix(prefix, REDIS_URL).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('tells the viewer the configured gateway port, whatever Host the request names', async () => {
    for (const host of [`127.0.0.1:${apiPort}`, 'evil.example', 'evil.example:1234']) {
      const res = await rawGet(`http://127.0.0.1:${apiPort}/v1/config`, { host });
      expect(res.status).toBe(200);
      expect(res.body).not.toContain('evil');
      expect(JSON.parse(res.body)).toEqual({ gatewayPort });
    }
  });

  it('announces tile URLs on the configured API port', async () => {
    const viewer = new TestViewer(`http://127.0.0.1:${gatewayPort}`);
    try {
      await viewer.connected();
      const ack = await viewer.request({ dataset: 'demo', spec: { channels: [{ index: 0, color: '#ffffff', window: [0, 4000] }], format: 'png' }, tiles: [{ level: 0, z: 0, t: 0, x: 0, y: 0 }] });
      if (!ack.ok) throw new Error(JSON.stringify(ack.error));
      const keys = [...ack.ready, ...ack.pending].map((t) => t.key);
      await viewer.waitFor(keys, 60_000);
      const url = viewer.delivered.get(keys[0]!)!;
      expect(url.startsWith(`http://localhost:${apiPort}/tiles/`)).toBe(true);
      const tile = await fetch(url.replace('localhost', '127.0.0.1'));
      expect([tile.status, tile.headers.get('content-type')]).toEqual([200, 'image/png']);
    } finally {
      viewer.close();
    }
  }, 90_000);

  it('does not load the AWS SDK on local storage (no Node-version warning)', () => {
    expect(output.join('')).not.toMatch(/AWS SDK|NodeVersionSupportWarning/);
  });
});

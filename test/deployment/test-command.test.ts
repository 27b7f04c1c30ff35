import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// Issue 11 item 16: the README's `npm ci && npm test` brings what it needs on a fresh machine
// (Redis, Debian's Chromium), and .ci/run runs exactly that command.

const ROOT = resolve(__dirname, '../..');
const SCRIPT = resolve(ROOT, 'test/support/prepare-test-machine.mjs');

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => done(port));
    });
  });
}

function prepare(env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [SCRIPT], { env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => done({ code, lines: out.split('\n').filter((l) => l.trim() !== '') }));
  });
}

const redisCli = (port: number, ...args: string[]) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim();

describe('npm test brings what it needs', () => {
  it('runs the machine preparation before the tests', () => {
    const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.pretest).toBe('node test/support/prepare-test-machine.mjs');
  });

  it('.ci/run runs exactly the README command and still counts from jest JSON results', () => {
    const ci = readFileSync(resolve(ROOT, '.ci/run'), 'utf8');
    const readme = readFileSync(resolve(ROOT, 'README.md'), 'utf8');
    const commands = ci.split('\n').filter((l) => /^\s*npm /.test(l));
    expect(commands).toEqual(['npm ci && npm test']);
    expect(readme).toMatch(/^npm ci && npm test\b/m);
    expect(ci).toContain('test-results/jest.json');
    expect(ci).toContain('passed, ${r.numFailedTests} failed');
  });

  it('starts Redis (noeviction) when none answers, and leaves a running one alone', async () => {
    const port = await freePort();
    try {
      expect(redisCli(port, 'ping')).not.toBe('PONG');
      const first = await prepare({ REDIS_URL: `redis://127.0.0.1:${port}`, CHROMIUM_PATH: process.execPath });
      expect(first.code).toBe(0);
      expect(redisCli(port, 'ping')).toBe('PONG');
      expect(redisCli(port, 'config', 'get', 'maxmemory-policy')).toContain('noeviction');
      expect(first.lines.some((l) => l.includes(`port ${port}`))).toBe(true);
      const second = await prepare({ REDIS_URL: `redis://127.0.0.1:${port}`, CHROMIUM_PATH: process.execPath });
      expect(second).toEqual({ code: 0, lines: [] });
    } finally {
      redisCli(port, 'shutdown', 'nosave');
    }
  });

  it('says in one line what to do when no Redis can be had', async () => {
    const port = await freePort();
    // A PATH with node only: no redis-server to start.
    const bin = mkdtempSync(join(tmpdir(), 'tf-path-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const r = await prepare({ REDIS_URL: `redis://127.0.0.1:${port}`, CHROMIUM_PATH: process.execPath, PATH: bin });
    rmSync(bin, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/no Redis answers at .*no redis-server is on PATH.*apt-get install -y redis-server/);
  });

  it('says in one line how to get Chromium when it cannot install it', async () => {
    // A custom CHROMIUM_PATH is never apt-installed: the line names it and the install command.
    const r = await prepare({ CHROMIUM_PATH: '/nonexistent/chromium' });
    expect(r.code).toBe(0);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(/Chromium is not at \/nonexistent\/chromium.*apt-get install -y chromium/);
  });
});

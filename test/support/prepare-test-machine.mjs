#!/usr/bin/env node
// `npm test`'s pretest: brings what the suite needs on a fresh machine of this kind, so the
// README's `npm ci && npm test` is the whole recipe (and the one .ci/run runs).
//  - Redis: started (daemonized, noeviction, no persistence) if none answers at REDIS_URL and a
//    redis-server binary is on PATH, as `npm start` does; otherwise one line saying what to do.
//  - Chromium for the browser tests (playwright-core drives Debian's, never a download): installed
//    with apt-get when missing and running as root; otherwise one line saying how.
//  - Python's zarr (Debian python3-zarr), which writes the OME-Zarr fixtures
//    (test/fixtures/zarr/generate.py): installed the same way.
//  - libvips' CLI (Debian libvips-tools), libvips built with zstd and OpenJPEG (sharp's is not):
//    the ingest codec tests compare our zstd/JPEG 2000 decode against its own; installed the same
//    way, and those comparisons are skipped (not failed) without it.
//  - c-blosc (Debian libblosc1, which brings libzstd1 and liblz4-1), which with them decodes Blosc,
//    zstd and lz4 chunks of linked OME-Zarrs through koffi: installed the same way. Without it the
//    apps, which refuse code generation from strings, cannot read Blosc chunks at all (numcodecs'
//    wasm fallback needs it), and the zarr tests fail.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { delimiter, join } from 'node:path';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const DEBIAN_CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? DEBIAN_CHROMIUM;
const say = (line) => console.log(`[pretest] ${line}`);

function redisAnswers(url) {
  const u = new URL(url);
  return new Promise((done) => {
    const socket = createConnection({ host: u.hostname, port: Number(u.port || 6379) });
    const finish = (ok) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => {
      socket.write('PING\r\n');
      socket.once('data', (d) => finish(/^(\+PONG|-NOAUTH)/.test(d.toString())));
    });
  });
}

function onPath(binary) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return '';
}

async function ensureRedis() {
  if (await redisAnswers(REDIS_URL)) return true;
  const u = new URL(REDIS_URL);
  const local = ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(u.hostname);
  const server = local ? onPath('redis-server') : '';
  if (!server) {
    say(`no Redis answers at ${REDIS_URL}${local ? ' and no redis-server is on PATH' : ''}: install Redis 7 (Debian: apt-get install -y redis-server) or point REDIS_URL at one`);
    return false;
  }
  const port = u.port || '6379';
  // BullMQ needs noeviction; test data is throwaway, so no persistence.
  const started = spawnSync(server, ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', port, '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { encoding: 'utf8' });
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers(REDIS_URL)) {
      say(`started ${server} on port ${port} (it keeps running after the tests; stop it with: redis-cli -p ${port} shutdown nosave)`);
      return true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  say(`could not start ${server} on port ${port}: ${(started.stderr || started.stdout || '').trim().split('\n').pop()}`);
  return false;
}

/**
 * What the tests need from Debian besides Redis: each entry says how to see it is there, which
 * package brings it, and what fails without it. Everything missing is installed in one apt-get run
 * (as root), or named with the command to run.
 */
const DEBIAN_NEEDS = [
  {
    what: 'Chromium',
    pkg: 'chromium',
    present: () => existsSync(CHROMIUM_PATH),
    // A CHROMIUM_PATH of the operator's own is theirs to install.
    installable: CHROMIUM_PATH === DEBIAN_CHROMIUM,
    without: `Chromium is not at ${CHROMIUM_PATH}, so the browser tests will fail (or set CHROMIUM_PATH)`,
  },
  {
    what: 'Python zarr',
    pkg: 'python3-zarr',
    present: () => spawnSync('/usr/bin/python3', ['-c', 'import zarr, numcodecs'], { encoding: 'utf8' }).status === 0,
    installable: true,
    without: 'Python zarr is missing, so the OME-Zarr tests cannot write their fixtures',
  },
  {
    what: 'the vips CLI',
    pkg: 'libvips-tools',
    present: () => existsSync('/usr/bin/vips') || onPath('vips') !== '',
    installable: true,
    without: "the vips CLI is missing, so the ingest codec tests skip their checks against libvips' own zstd/JPEG 2000 decode",
  },
  {
    what: 'c-blosc',
    pkg: 'libblosc1',
    present: () => /libblosc\.so\.1\b/.test(spawnSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? ''),
    installable: true,
    without: "c-blosc (libblosc.so.1) is missing, so tilefarm's processes cannot read linked OME-Zarrs' Blosc chunks and the zarr tests fail",
  },
];

function ensureDebianPackages() {
  const missing = DEBIAN_NEEDS.filter((n) => !n.present());
  const installable = missing.filter((n) => n.installable);
  if (installable.length > 0 && process.getuid?.() === 0 && onPath('apt-get')) {
    const pkgs = installable.map((n) => n.pkg).join(' ');
    say(`missing: ${installable.map((n) => n.what).join(', ')}; installing Debian's ${pkgs} with apt-get (once)...`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const run = spawnSync('/bin/sh', ['-c', `apt-get update -qq && apt-get install -y -qq ${pkgs}`], { env, encoding: 'utf8' });
    if (run.status !== 0) say(`apt-get could not install ${pkgs}: ${(run.stderr || '').trim().split('\n').pop() ?? ''}`);
  }
  for (const n of missing) if (!n.present()) say(`${n.without}: install it as root with: apt-get install -y ${n.pkg}`);
}

const redisOk = await ensureRedis();
ensureDebianPackages();
process.exit(redisOk ? 0 : 1);

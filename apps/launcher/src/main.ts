import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createConnection } from 'node:net';
import { ConfigError, MALLOC_TUNABLES, environmentWithFile, nodeFlagsFor, loadConfig, storageSettings, tileBaseUrl } from '@tilefarm/config';
import { DatasetCatalog, createSyntheticDataset } from '@tilefarm/datasets';
import { openObjectStore } from '@tilefarm/storage';
import { LauncherConfig } from './config';
import { Supervisor, type SupervisedProcess } from './supervisor';


function redisAnswers(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((done) => {
    const socket = createConnection({ host: u.hostname, port: Number(u.port || 6379) });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => {
      socket.write('PING\r\n');
      socket.once('data', (d) => finish(d.toString().startsWith('+PONG') || d.toString().startsWith('-NOAUTH')));
    });
  });
}

/**
 * `npm start`: the whole system on one machine on its embedded default, supervised (a crashed child
 * is restarted with backoff; a crash loop or SIGTERM stops everything) — Redis (started here if
 * none answers and redis-server exists), the demo dataset on first start, the API with the viewer,
 * one gateway and several workers as separate processes.
 */
async function main(): Promise<void> {
  const env = environmentWithFile(process.env);
  const config = loadConfig(LauncherConfig, env);
  // Every child gets the same ports and public URLs, derived here once: announced tile URLs and
  // the viewer's gateway follow PORT and GATEWAY_PORT unless set explicitly.
  const shared: Record<string, string> = {
    PORT: String(config.PORT),
    GATEWAY_PORT: String(config.GATEWAY_PORT),
    TILE_BASE_URL: tileBaseUrl(config),
    ...(config.GATEWAY_PUBLIC_URL ? { GATEWAY_PUBLIC_URL: config.GATEWAY_PUBLIC_URL } : {}),
    GLIBC_TUNABLES: env.GLIBC_TUNABLES ?? MALLOC_TUNABLES,
  };
  const root = resolve(__dirname, '../../..');
  const scripts = new Map<string, { command: string; args: string[]; env?: Record<string, string>; stdio: 'inherit' | 'apps' }>();
  const startProcess = (name: string): SupervisedProcess => {
    const s = scripts.get(name)!;
    const child = spawn(s.command, s.args, { env: { ...env, ...(s.stdio === 'apps' ? shared : {}), ...s.env }, stdio: s.stdio === 'inherit' ? 'inherit' : ['ignore', 'inherit', 'inherit'] });
    return {
      onExit: (listener) => child.once('exit', listener),
      kill: (signal) => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      },
    };
  };
  const log = (line: string) => console.error(`[launcher] ${line}`);
  const supervisor = new Supervisor(startProcess, log, () => void stop(1), {
    initialBackoffMs: config.RESTART_BACKOFF_MS,
    maxBackoffMs: config.RESTART_MAX_BACKOFF_MS,
    stableAfterMs: Math.min(30_000, config.CRASH_LOOP_WINDOW_MS),
    crashLoopCount: config.CRASH_LOOP_COUNT,
    crashLoopWindowMs: config.CRASH_LOOP_WINDOW_MS,
  });

  let redisStarted = false;
  if (!(await redisAnswers(config.REDIS_URL))) {
    const u = new URL(config.REDIS_URL);
    const local = ['127.0.0.1', 'localhost', '::1'].includes(u.hostname);
    const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
    if (!local || !found) {
      console.error(
        `No Redis answers at ${config.REDIS_URL}${local ? ' and no redis-server binary is on PATH' : ''}.\n` +
          'Install Redis 7 (Debian: apt-get install redis-server) or point REDIS_URL at one, then run npm start again.',
      );
      process.exit(1);
    }
    const dir = resolve(config.DATA_DIR, 'redis');
    mkdirSync(dir, { recursive: true });
    console.log(`[launcher] starting ${found} on port ${u.port || 6379} (data in ${dir})`);
    // BullMQ's production rules: never evict keys; AOF so queued work survives a restart.
    scripts.set('redis', { command: found, args: ['--port', u.port || '6379', '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', ''], stdio: 'inherit' });
    supervisor.start('redis');
    redisStarted = true;
    for (let i = 0; i < 50 && !(await redisAnswers(config.REDIS_URL)); i++) await new Promise((r) => setTimeout(r, 100));
  }

  if (config.DEMO_DATASET) {
    const catalog = new DatasetCatalog(openObjectStore(storageSettings(config)));
    if (!(await catalog.find('demo'))) {
      console.log('[launcher] creating the demo dataset (first start only)...');
      const m = await createSyntheticDataset(catalog, { id: 'demo', name: 'Demo: synthetic cells, 3 channels, 10 z', width: 1536, height: 1024, sizeZ: 10 });
      console.log(`[launcher] demo dataset ready: ${m.width}x${m.height}, ${m.sizeZ} z, ${m.channels.length} channels, ${m.levels} levels`);
    }
  }

  const apps: string[] = [];
  const run = (name: string, script: string) => {
    scripts.set(name, { command: process.execPath, args: [...nodeFlagsFor(script), resolve(root, script)], stdio: 'apps' });
    apps.push(name);
    supervisor.start(name);
  };
  run('api', 'apps/api/dist/main.js');
  run('gateway', 'apps/gateway/dist/main.js');
  for (let i = 0; i < config.WORKERS; i++) run(`worker-${i + 1}`, 'apps/worker/dist/main.js');
  console.log(`[launcher] viewer: http://localhost:${config.PORT}  sockets: ws://localhost:${config.GATEWAY_PORT}  workers: ${config.WORKERS}`);

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    // Apps first, Redis last, so workers can finish and record their jobs.
    await supervisor.stop(apps);
    if (redisStarted) await supervisor.stop(['redis']);
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
}

main().catch((e: unknown) => {
  console.error(e instanceof ConfigError ? e.message : e);
  process.exit(1);
});

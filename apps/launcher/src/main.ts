import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createConnection } from 'node:net';
import { z } from 'zod';
import { ConfigError, LogEnv, RedisEnv, StorageEnv, envHelpers, loadConfig, requireS3Bucket, storageSettings } from '@tilefarm/config';
import { DatasetCatalog, createSyntheticDataset } from '@tilefarm/datasets';
import { openObjectStore } from '@tilefarm/storage';

const LauncherConfig = z
  .object({
    ...RedisEnv,
    ...StorageEnv,
    ...LogEnv,
    WORKERS: envHelpers.int(1, 64).default(2),
    PORT: envHelpers.int(1, 65535).default(8080),
    GATEWAY_PORT: envHelpers.int(1, 65535).default(8081),
    DEMO_DATASET: envHelpers.bool.default(true),
  })
  .superRefine(requireS3Bucket);

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
 * `npm start`: the whole system on one machine on its embedded default — Redis (started here if
 * none answers and redis-server exists), the demo dataset on first start, the API with the viewer,
 * one gateway and several workers as separate processes.
 */
async function main(): Promise<void> {
  const config = loadConfig(LauncherConfig, process.env);
  const children: ChildProcess[] = [];
  const root = resolve(__dirname, '../../..');

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
    const redis = spawn(found, ['--port', u.port || '6379', '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', ''], { stdio: 'inherit' });
    children.push(redis);
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

  const run = (name: string, script: string, extraEnv: Record<string, string> = {}) => {
    const child = spawn(process.execPath, [resolve(root, script)], { env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('exit', (code, signal) => {
      if (!stopping) console.error(`[launcher] ${name} exited (${code ?? signal}); stopping everything`);
      void stop(code ?? 1);
    });
    children.push(child);
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
    const apps = children.slice(children.length - (2 + config.WORKERS));
    for (const c of apps) c.kill('SIGTERM');
    await Promise.all(apps.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
}

main().catch((e: unknown) => {
  console.error(e instanceof ConfigError ? e.message : e);
  process.exit(1);
});

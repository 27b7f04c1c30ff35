import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { ApiConfig } from '../../apps/api/src/config';
import { GatewayConfig } from '../../apps/gateway/src/config';
import { LauncherConfig } from '../../apps/launcher/src/config';
import { WorkerConfig } from '../../apps/worker/src/config';
import { nodeFlagsFor } from '@tilefarm/config';

// Issue 7: there is no Docker engine here, so the deployment files are checked by reading them:
// the properties BullMQ and operations depend on, and that every variable is real and documented.

const ROOT = resolve(__dirname, '../..');
const APPS = { api: ApiConfig, gateway: GatewayConfig, worker: WorkerConfig } as const;

interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, unknown>;
  healthcheck?: { test?: string[] | string };
  depends_on?: Record<string, { condition?: string }>;
  deploy?: { replicas?: number };
  restart?: string;
  stop_grace_period?: string;
}

const compose = parse(readFileSync(resolve(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;
const asText = (v: string[] | string | undefined) => (Array.isArray(v) ? v.join(' ') : (v ?? ''));

describe('docker-compose.yml', () => {
  it('has redis, minio with a bucket-creating init, api, gateway and workers', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'gateway', 'minio', 'minio-init', 'redis', 'worker']);
  });

  it('runs Redis as BullMQ requires: noeviction and AOF, on a volume', () => {
    const cmd = asText(services.redis!.command);
    expect(cmd).toMatch(/--maxmemory-policy noeviction/);
    expect(cmd).toMatch(/--appendonly yes/);
    expect(services.redis!.image).toMatch(/^redis:7/);
    expect(JSON.stringify(services.redis)).toContain('/data');
  });

  it('creates the bucket at start, and the apps wait for it and for a healthy Redis', () => {
    const init = services['minio-init']!;
    expect(asText(init.entrypoint) + asText(init.command)).toMatch(/mc mb --ignore-existing/);
    expect(init.depends_on?.minio?.condition).toBe('service_healthy');
    for (const name of Object.keys(APPS)) {
      expect(services[name]!.depends_on?.redis?.condition).toBe('service_healthy');
      expect(services[name]!.depends_on?.['minio-init']?.condition).toBe('service_completed_successfully');
    }
  });

  it('gives every long-running service a health check, and workers a replica count', () => {
    for (const name of ['redis', 'minio', 'api', 'gateway', 'worker']) expect([name, asText(services[name]!.healthcheck?.test).length > 0]).toEqual([name, true]);
    expect(asText(services.api!.healthcheck?.test)).toContain('/readyz');
    expect(services.worker!.deploy?.replicas).toBeGreaterThanOrEqual(2);
    // The worker health check needs a fixed metrics port.
    expect(String(services.worker!.environment?.WORKER_METRICS_PORT)).toMatch(/^[1-9][0-9]+$/);
    expect(asText(services.worker!.healthcheck?.test)).toContain(`:${services.worker!.environment?.WORKER_METRICS_PORT}/healthz`);
  });

  it('builds one image and runs each app from it with its own command; drains get time before SIGKILL', () => {
    for (const name of Object.keys(APPS)) {
      const s = services[name]!;
      expect(s.build).toBe('.');
      expect(s.image).toBe('tilefarm:local');
      // The apps' node flags (no code from strings, in every app), as the launcher and the test system run them.
      expect(s.command).toEqual(['node', ...nodeFlagsFor(`apps/${name}/dist/main.js`), `apps/${name}/dist/main.js`]);
      expect(s.command).toContain('--disallow-code-generation-from-strings');
      expect(existsSync(resolve(ROOT, `apps/${name}/src/main.ts`))).toBe(true);
      const grace = Number(/^(\d+)s$/.exec(s.stop_grace_period ?? '')?.[1] ?? 0) * 1000;
      expect(grace).toBeGreaterThan(Number(s.environment?.SHUTDOWN_TIMEOUT_MS ?? 10_000));
    }
  });

  it('passes each app only variables its config schema knows, and points them at redis and minio', () => {
    for (const [name, schema] of Object.entries(APPS)) {
      const known = new Set(Object.keys(schema.shape));
      const env = services[name]!.environment ?? {};
      expect([name, Object.keys(env).filter((k) => !known.has(k))]).toEqual([name, []]);
      expect(env.REDIS_URL).toBe('redis://redis:6379');
      expect(env.STORAGE).toBe('s3');
      expect(env.S3_ENDPOINT).toBe('http://minio:9000');
    }
  });

  it('gives the workers of one host a memory-backed directory, theirs alone, to hand each other decoded Zarr chunks', () => {
    const worker = services.worker as Service & { volumes?: string[] };
    const dir = String(worker.environment?.SHARED_CHUNKS_DIR);
    const mount = (worker.volumes ?? []).map((v) => v.split(':')).find(([, target]) => dir.startsWith(`${target}/`));
    expect(mount).toBeDefined();
    const volume = compose.volumes?.[mount![0]!] as { driver_opts?: { type?: string; o?: string } };
    expect(volume.driver_opts?.type).toBe('tmpfs');
    // The image runs as node (uid 1000); the worker refuses a directory other users may enter.
    expect(volume.driver_opts?.o).toMatch(/(^|,)uid=1000(,|$)/);
    expect(volume.driver_opts?.o).toMatch(/(^|,)mode=0?700(,|$)/);
    expect(readFileSync(resolve(ROOT, 'Dockerfile'), 'utf8')).toMatch(/^USER node$/m);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(resolve(ROOT, 'Dockerfile'), 'utf8');
  it('builds on node:20 with npm ci and npm run build, and runs node directly (signals reach it)', () => {
    expect(dockerfile).toMatch(/^FROM node:20/m);
    expect(dockerfile).toMatch(/npm ci/);
    expect(dockerfile).toMatch(/npm run build/);
    expect(dockerfile).toMatch(/^CMD \["node", "--disallow-code-generation-from-strings", "apps\/api\/dist\/main\.js"\]/m);
    expect(dockerfile).toMatch(/^USER node/m);
  });
  it('builds the worker\'s native pixel kernels with a C compiler in the build stage only', () => {
    const [build, runtime] = dockerfile.split(/^FROM node:20-bookworm-slim$/m);
    expect(build).toMatch(/apt-get install -y --no-install-recommends python3 make g\+\+/);
    expect(runtime).not.toMatch(/g\+\+/);
  });
  it('installs the C libraries that decode linked Zarrs\' Blosc, zstd and lz4 chunks (the apps have no code-generating fallback)', () => {
    expect(dockerfile).toMatch(/^RUN apt-get update && apt-get install -y --no-install-recommends libblosc1 libzstd1 liblz4-1 /m);
  });
});

describe('.env.example', () => {
  const text = readFileSync(resolve(ROOT, '.env.example'), 'utf8');
  const documented = new Map<string, string>();
  const lines = text.split('\n');
  const VARIABLE = /^#? ?([A-Z][A-Z0-9_]+)=/;
  lines.forEach((line, i) => {
    const m = VARIABLE.exec(line);
    if (!m) return;
    // The meaning: the nearest comment above that is not itself a variable line (same block).
    let j = i - 1;
    while (j >= 0 && VARIABLE.test(lines[j]!)) j--;
    documented.set(m[1]!, lines[j] ?? '');
  });

  it('lists every variable of every app, each with a one-line meaning above it', () => {
    for (const [name, schema] of Object.entries({ ...APPS, launcher: LauncherConfig })) {
      const missing = Object.keys(schema.shape).filter((k) => !documented.has(k));
      expect([name, missing]).toEqual([name, []]);
    }
    for (const [key, above] of documented) expect([key, /^# \S/.test(above)]).toEqual([key, true]);
  });

  it('documents only variables some app or compose actually reads', () => {
    const known = new Set([...[...Object.values(APPS), LauncherConfig].flatMap((s) => Object.keys(s.shape)), 'MINIO_ROOT_USER', 'MINIO_ROOT_PASSWORD']);
    expect([...documented.keys()].filter((k) => !known.has(k))).toEqual([]);
  });
});

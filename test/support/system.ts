import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { MALLOC_TUNABLES, nodeFlagsFor } from '@tilefarm/config';
import { openObjectStore, type ObjectStore } from '@tilefarm/storage';
import { DatasetCatalog, type SyntheticOptions } from '@tilefarm/datasets';
import type { ObjectStoreSettings } from '@tilefarm/storage';
import type { IngestStatusBody } from '@tilefarm/contracts';
import { REDIS_URL, dropPrefix, uniquePrefix } from './redis';
import { filesInBucket, startS3Server, type RunningS3 } from './s3-server';

// Found through the workspace link, so this also works from a bundled benchmark.
const ROOT = resolve(dirname(require.resolve('@tilefarm/api/package.json')), '../..');

/** Runs createSyntheticDataset in a plain node process (see create-synthetic.js). */
export async function createDatasets(store: ObjectStoreSettings, datasets: SyntheticOptions[]): Promise<void> {
  const child = spawn(process.execPath, [join(ROOT, 'test/support/create-synthetic.js'), JSON.stringify({ store, datasets })], { stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`creating synthetic datasets failed (${code}): ${stderr.slice(-2000)}`);
}

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => done(port));
    });
  });
}

export interface AppProcess {
  name: string;
  child: ChildProcess;
  output: string[];
  /** Set by stop(): an exit after it is expected, one before it is a crash. */
  stopRequested: boolean;
  /** Sends SIGKILL (crash) or SIGTERM (graceful) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface SystemOptions {
  workers?: number;
  gateways?: number;
  storage?: 'local' | 's3';
  /** Extra environment for every process. */
  env?: Record<string, string>;
  /** Redis to use instead of the shared one (fault tests stop and restart their own). */
  redisUrl?: string;
  /** Synthetic datasets to create before the processes start. */
  datasets?: SyntheticOptions[];
  /** Extra node flags per process name (`api`, `gateway-0`, `worker-1`...), e.g. --cpu-prof for a bench. */
  nodeArgs?: (name: string) => string[];
  /** How long the processes may take to answer their health checks (benches on a loaded machine wait longer). */
  readyTimeoutMs?: number;
}

/**
 * A whole tilefarm as real OS processes (built apps from dist/), on a unique Redis prefix and its
 * own storage (a temp dir, or an s3rver the test starts). `stop()` ends every process and removes
 * every trace.
 */
/** How registerDataset and ingestEnded wait: as which tenant (a bearer token), and how long at most. */
export interface IngestWait {
  token?: string;
  timeoutMs?: number;
}

const bearer = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

export class TestSystem {
  readonly prefix = uniquePrefix('sys');
  readonly apiPort: number;
  readonly gatewayPorts: number[];
  readonly processes: AppProcess[] = [];
  readonly workers: AppProcess[] = [];
  store!: ObjectStore;
  settings!: ObjectStoreSettings;
  catalog!: DatasetCatalog;
  private dataDir?: string;
  private s3?: RunningS3;
  env: Record<string, string> = {};

  private constructor(apiPort: number, gatewayPorts: number[], private readonly options: SystemOptions) {
    this.apiPort = apiPort;
    this.gatewayPorts = gatewayPorts;
  }

  static async start(options: SystemOptions = {}): Promise<TestSystem> {
    // A port freePort found free can be taken by another socket before the app binds it (the
    // app then exits with EADDRINUSE): boot again on new ports rather than fail the suite.
    for (let attempt = 1; ; attempt++) {
      const apiPort = await freePort();
      const gatewayPorts: number[] = [];
      for (let i = 0; i < (options.gateways ?? 1); i++) gatewayPorts.push(await freePort());
      const system = new TestSystem(apiPort, gatewayPorts, options);
      try {
        await system.boot();
        return system;
      } catch (e) {
        await system.stop();
        if (attempt >= 3 || !String(e).includes('EADDRINUSE')) throw e;
      }
    }
  }

  get redisUrl(): string {
    return this.options.redisUrl ?? REDIS_URL;
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }

  gatewayUrl(i = 0): string {
    return `http://127.0.0.1:${this.gatewayPorts[i]}`;
  }

  private async boot(): Promise<void> {
    const base: Record<string, string> = {
      REDIS_URL: this.redisUrl,
      REDIS_PREFIX: this.prefix,
      LOG_LEVEL: 'info',
      TILE_BASE_URL: this.apiUrl,
      PUBLIC_URL: this.apiUrl,
      GLIBC_TUNABLES: MALLOC_TUNABLES, // as the launcher and the image run them
      ...this.options.env,
    };
    if (this.options.storage === 's3') {
      this.s3 = await startS3Server();
      Object.assign(base, this.s3.env);
      this.settings = { kind: 's3', bucket: this.s3.bucket, region: 'us-east-1', endpoint: this.s3.endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
      this.store = openObjectStore(this.settings);
    } else {
      this.dataDir = mkdtempSync(join(tmpdir(), 'tilefarm-sys-'));
      Object.assign(base, { STORAGE: 'local', DATA_DIR: this.dataDir });
      this.settings = { kind: 'local', dir: this.dataDir };
      this.store = openObjectStore(this.settings);
    }
    this.env = base;
    this.catalog = new DatasetCatalog(this.store, 0);
    if (this.options.datasets?.length) await createDatasets(this.settings, this.options.datasets);
    // The API tells browsers where the gateway is (GET /v1/config); a test's own env wins.
    const gatewayPublic = this.options.env?.GATEWAY_PUBLIC_URL ?? this.gatewayUrl(0);
    this.spawnApp('api', 'apps/api/dist/main.js', { PORT: String(this.apiPort), HOST: '127.0.0.1', GATEWAY_PUBLIC_URL: gatewayPublic });
    this.gatewayPorts.forEach((port, i) => this.spawnApp(`gateway-${i}`, 'apps/gateway/dist/main.js', { GATEWAY_PORT: String(port), HOST: '127.0.0.1' }));
    for (let i = 0; i < (this.options.workers ?? 2); i++) this.addWorker();
    await this.waitFor(`${this.apiUrl}/readyz`, this.options.readyTimeoutMs ?? 45_000); // four Node processes on a loaded 2-core machine; fails inside a 60 s hook, with the logs
    for (let i = 0; i < this.gatewayPorts.length; i++) await this.waitFor(`${this.gatewayUrl(i)}/healthz`, this.options.readyTimeoutMs ?? 45_000); // four Node processes on a loaded 2-core machine; fails inside a 60 s hook, with the logs
  }

  /**
   * Every file the storage backend holds, looked at directly (the data directory, or s3rver's
   * bucket directory with its in-progress multipart parts), relative to it: what "nothing left
   * behind" is checked against, without trusting the adapter under test.
   */
  storedFiles(): string[] {
    if (this.s3) return filesInBucket(this.s3);
    const root = this.dataDir!;
    const out: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else out.push(relative(root, join(dir, e.name)));
      }
    };
    walk(root);
    return out.sort();
  }

  /** Starts one more worker process (e.g. after killing one). */
  addWorker(extraEnv: Record<string, string> = {}): AppProcess {
    const p = this.spawnApp(`worker-${this.workers.length}`, 'apps/worker/dist/main.js', extraEnv);
    this.workers.push(p);
    return p;
  }

  spawnApp(name: string, script: string, extraEnv: Record<string, string> = {}): AppProcess {
    const child = spawn(process.execPath, [...nodeFlagsFor(script), ...(this.options.nodeArgs?.(name) ?? []), resolve(ROOT, script)], { // as the launcher runs them
      env: { PATH: process.env.PATH ?? '', ...this.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    const keep = (d: Buffer) => {
      output.push(d.toString());
      if (output.length > 200) output.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const proc: AppProcess = {
      name,
      child,
      output,
      stopRequested: false,
      stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
        proc.stopRequested = true;
        if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
        const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        const code = await exited;
        clearTimeout(timer);
        return code;
      },
    };
    this.processes.push(proc);
    return proc;
  }

  /**
   * Polls `url` until it answers 2xx. Fails at once, with every process's last output, when one of
   * the system's processes has exited without being stopped (a start that failed is not waited out), and each poll
   * gives up after a few seconds so a server that accepts but never answers cannot hang the boot.
   */
  /**
   * POST /v1/datasets with `body` (as `token`'s tenant, if given), then its ingest's status once it
   * has ended (see ingestEnded). Throws, with the answer, unless the API accepted it (202).
   */
  async registerDataset(body: Record<string, unknown>, options: IngestWait = {}): Promise<IngestStatusBody> {
    const res = await fetch(`${this.apiUrl}/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(options.token) }, body: JSON.stringify(body) });
    if (res.status !== 202) throw new Error(`POST /v1/datasets answered ${res.status}: ${await res.text()}`);
    return this.ingestEnded(((await res.json()) as { jobId: string }).jobId, options);
  }

  /**
   * GET /v1/ingests/{jobId} (as `token`'s tenant, if given) until the ingest has completed or
   * failed; the last status seen if `timeoutMs` (default 120 s) passes first, for the caller to judge.
   */
  async ingestEnded(jobId: string, options: IngestWait = {}): Promise<IngestStatusBody> {
    const deadline = Date.now() + (options.timeoutMs ?? 120_000);
    for (;;) {
      const status = (await (await fetch(`${this.apiUrl}/v1/ingests/${jobId}`, { headers: bearer(options.token) })).json()) as IngestStatusBody;
      if (status.state === 'completed' || status.state === 'failed' || Date.now() > deadline) return status;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async waitFor(url: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const logs = () => this.processes.map((p) => `--- ${p.name}\n${p.output.join('').slice(-2000)}`).join('\n');
    let last = '';
    while (Date.now() < deadline) {
      const exited = this.processes.find((p) => !p.stopRequested && (p.child.exitCode !== null || p.child.signalCode !== null));
      if (exited) throw new Error(`${exited.name} exited (${exited.child.exitCode ?? exited.child.signalCode}) while waiting for ${url}\n${logs()}`);
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
        if (res.ok) return;
        last = `${res.status}`;
      } catch (e) {
        last = String(e);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${url} not ready after ${timeoutMs} ms (${last})\n${logs()}`);
  }

  /** Sum of a counter over every worker's /metrics (each worker logs its metrics port): its first series, or the one with these labels. */
  async workerCounter(name: string, labels: Record<string, string> = {}): Promise<number> {
    return (await this.workerMetrics()).counter(name, labels);
  }

  /**
   * Every live worker's /metrics, read once each: several counters of one moment for the cost of
   * one request per worker. `counter` sums over the workers as workerCounter does.
   */
  async workerMetrics(): Promise<{ counter(name: string, labels?: Record<string, string>): number }> {
    const texts: string[] = [];
    for (const w of this.workers) {
      if (w.child.exitCode !== null || w.child.signalCode !== null) continue;
      const port = /"metricsPort":(\d+)/.exec(w.output.join(''))?.[1];
      if (!port) throw new Error(`${w.name} has not logged its metrics port`);
      texts.push(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
    }
    const lines = texts.map((text) => text.split('\n'));
    return {
      counter(name, labels = {}) {
        const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
        let total = 0;
        for (const worker of lines) {
          const line = worker.find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && wanted.every((w) => l.slice(0, l.lastIndexOf(' ')).includes(w)));
          total += line ? Number(line.split(' ').pop()) : 0;
        }
        return total;
      },
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop('SIGTERM')));
    await this.store?.close?.();
    await this.s3?.stop();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
    await dropPrefix(this.prefix, this.redisUrl).catch(() => undefined); // a private Redis may be gone already
  }
}

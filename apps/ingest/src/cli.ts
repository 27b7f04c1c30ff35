import { relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { IngestSourceEnv, RedisEnv, RetentionEnv, StorageEnv, TenantQuotaEnv, requireS3Bucket, storageSettings, tenantQuotaBytes } from '@tilefarm/config';
import { isTilefarmError, type DatasetManifest } from '@tilefarm/contracts';
import { DatasetCatalog } from '@tilefarm/datasets';
import { ingestFile, type IngestProgress } from '@tilefarm/ingest';
import { openObjectStore } from '@tilefarm/storage';
import { linkZarr, zarrPlaceResolver, zarritaLibrary } from '@tilefarm/zarr';
import { IngestTracker, RedisIngestCoordination, RetiredVersions, TenantQuotaReservations, createRedis, type RedisClient } from '@tilefarm/queue';

const USAGE = `usage: npm run ingest -- FILE --id NAME [--name TEXT] [--tenant NAME] [--tile-size 256|512] [--max-source-pixels N] [--max-write-ratio R] [--ignore-ome-xml]
       npm run ingest -- IMAGE.zarr|s3://bucket/prefix.zarr --id NAME [--link | --copy] [--name TEXT] [--tenant NAME] [--max-source-pixels N]
  --ignore-ome-xml  read an OME-TIFF's pages as a plain TIFF (pages = z), for OME-XML that does not
                    describe the file (e.g. copied from another one); prints a warning
  --link            (OME-Zarr, the default) register it where it lies: metadata checked, statistics
                    computed, no pixel copied; a local Zarr must lie under INGEST_ROOT (the path the
                    API and workers read it from), an s3:// one is read with the S3_* connection
  --copy            (OME-Zarr) write tilefarm's own source tiles from its levels instead
storage from the environment: STORAGE=local|s3, DATA_DIR (default ./.data),
  S3_ENDPOINT, S3_BUCKET, S3_PREFIX, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_FORCE_PATH_STYLE;
Redis (REDIS_URL, REDIS_PREFIX): the CLI takes the same per-dataset lock and version counter as
  queued ingests, so the two never write one dataset at once; VERSION_GRACE_S as the workers';
TENANT_STORAGE_QUOTA_MB as the workers': the bytes --tenant's datasets store (a --copy's too) may not pass it`;

// The same storage variables as every other process (S3_PREFIX included), so the CLI writes
// datasets exactly where the API and the workers look for them.
const Env = z.object({ ...StorageEnv, ...RedisEnv, ...RetentionEnv, ...TenantQuotaEnv, INGEST_ROOT: IngestSourceEnv.INGEST_ROOT }).superRefine((e, ctx) => {
  requireS3Bucket(e, ctx);
  if ((e.S3_ACCESS_KEY_ID === undefined) !== (e.S3_SECRET_ACCESS_KEY === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['S3_SECRET_ACCESS_KEY'], message: 'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together' });
  }
});
type Env = z.infer<typeof Env>;

export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown };
  /** Aborts the ingest (SIGINT); the CLI's own main wires it to the process. */
  signal?: AbortSignal;
}

interface Args {
  file: string;
  id: string;
  name?: string;
  tenant?: string;
  tileSize: 256 | 512;
  maxSourcePixels?: number;
  maxWriteRatio?: number;
  ignoreOmeXml: boolean;
  /** An OME-Zarr source (a path ending in .zarr or an s3:// URL): linked, or copied with --copy. */
  zarr?: { mode: 'link' | 'copy'; source: string };
}

/** OME-Zarr sources are directories named *.zarr, or s3:// URLs (TIFFs are local files). */
function isZarrSource(arg: string): boolean {
  return arg.startsWith('s3://') || /\.zarr\/*$/i.test(arg);
}

/** Arguments and environment, with every problem found at once (not just the first). */
function parseInput(argv: string[], rawEnv: Record<string, string | undefined>): { args?: Args; env?: Env; errors: string[] } {
  const errors: string[] = [];
  let args: Args | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        id: { type: 'string' },
        name: { type: 'string' },
        tenant: { type: 'string' },
        'tile-size': { type: 'string' },
        'max-source-pixels': { type: 'string' },
        'max-write-ratio': { type: 'string' },
        'ignore-ome-xml': { type: 'boolean' },
        link: { type: 'boolean' },
        copy: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) return { errors: ['help'] };
    if (positionals.length !== 1) errors.push(positionals.length === 0 ? 'FILE is required' : `one FILE expected, got ${positionals.length}`);
    if (!values.id) errors.push('--id is required');
    const tileSize = Number(values['tile-size'] ?? 256);
    if (tileSize !== 256 && tileSize !== 512) errors.push(`--tile-size must be 256 or 512, not "${values['tile-size']}"`);
    const max = values['max-source-pixels'] === undefined ? undefined : Number(values['max-source-pixels']);
    if (max !== undefined && !(Number.isFinite(max) && max > 0)) errors.push(`--max-source-pixels must be a positive number, not "${values['max-source-pixels']}"`);
    const ratio = values['max-write-ratio'] === undefined ? undefined : Number(values['max-write-ratio']);
    if (ratio !== undefined && !(Number.isFinite(ratio) && ratio > 0)) errors.push(`--max-write-ratio must be a positive number, not "${values['max-write-ratio']}"`);
    const zarr = positionals[0] !== undefined && isZarrSource(positionals[0]);
    if (values.link && values.copy) errors.push('--link and --copy exclude each other');
    if ((values.link || values.copy) && positionals[0] && !zarr) errors.push('--link and --copy are for OME-Zarr sources (IMAGE.zarr or s3://bucket/prefix.zarr)');
    if (zarr && values['ignore-ome-xml']) errors.push('--ignore-ome-xml is for OME-TIFF files, not OME-Zarr');
    if (zarr && values['tile-size'] !== undefined && tileSize !== 256) errors.push('OME-Zarr datasets use 256-pixel tiles');
    if (positionals[0] && values.id) {
      const source = positionals[0].startsWith('s3://') ? positionals[0].replace(/\/+$/, '') : resolve(positionals[0]);
      args = {
        file: positionals[0].startsWith('s3://') ? positionals[0] : resolve(positionals[0]),
        id: values.id,
        name: values.name,
        tenant: values.tenant,
        tileSize: tileSize as 256 | 512,
        maxSourcePixels: max,
        maxWriteRatio: ratio,
        ignoreOmeXml: values['ignore-ome-xml'] === true,
        ...(zarr ? { zarr: { mode: values.copy ? 'copy' : 'link', source } } : {}),
      };
    }
  } catch (e) {
    errors.push((e as Error).message);
  }
  const env = Env.safeParse(rawEnv);
  if (!env.success) for (const issue of env.error.issues) errors.push(`${issue.path.join('.') || 'environment'} ${issue.message}`);
  return { args, env: env.success ? env.data : undefined, errors };
}

function clock(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A bar redrawn in place on a terminal (10 times a second at most); a plain line every 2 s otherwise. */
function progressPrinter(io: CliIo, id: string): { update(p: IngestProgress): void; end(): void } {
  const tty = io.stdout.isTTY === true;
  const start = Date.now();
  let last = 0;
  let drawn = false;
  return {
    update(p) {
      const now = Date.now();
      if (p.phase === 'tiles' && p.done < p.total && now - last < (tty ? 100 : 2000)) return;
      last = now;
      const seconds = (now - start) / 1000;
      const rate = p.done / Math.max(seconds, 1e-3);
      const pct = p.total > 0 ? (100 * p.done) / p.total : 0;
      const eta = rate > 0 ? (p.total - p.done) / rate : Infinity;
      const stats = `${pct.toFixed(1).padStart(5)}%  ${p.done}/${p.total} tiles  ${rate.toFixed(0)} tiles/s  ETA ${clock(eta)}`;
      if (tty) {
        const width = 30;
        const full = Math.round((pct / 100) * width);
        io.stdout.write(`\r${p.phase.padEnd(7)} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${stats}\x1b[K`);
        drawn = true;
      } else if (p.phase === 'tiles') {
        io.stdout.write(`ingest ${id}: ${stats}\n`);
      } else {
        io.stdout.write(`ingest ${id}: ${p.phase}\n`);
      }
    },
    end() {
      if (drawn) io.stdout.write('\n');
    },
  };
}

/** The CLI as a function (tests call it; main.ts runs it); returns the exit code. */
export async function runIngestCli(argv: string[], rawEnv: Record<string, string | undefined>, io: CliIo): Promise<number> {
  const { args, env, errors } = parseInput(argv, rawEnv);
  if (errors[0] === 'help') {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (errors.length > 0 || !args || !env) {
    io.stderr.write(`ingest: ${errors.length} problem(s):\n${errors.map((e) => `  - ${e}`).join('\n')}\n${USAGE}\n`);
    return 2;
  }
  const redis = await connectRedis(env.REDIS_URL);
  if (!redis) {
    io.stderr.write(`ingest: no Redis answers at ${env.REDIS_URL}: the CLI takes the same per-dataset lock as queued ingests (set REDIS_URL).\nnothing was published.\n`);
    return 1;
  }
  if (args.zarr) return registerZarr(args, args.zarr, env, redis, io);
  const store = openObjectStore(storageSettings(env));
  const progress = progressPrinter(io, args.id);
  const started = Date.now();
  const coordination = new RedisIngestCoordination(new IngestTracker(env.REDIS_PREFIX, redis), new RetiredVersions(env.REDIS_PREFIX, redis), env.VERSION_GRACE_S * 1000);
  try {
    const m = await ingestFile({
      coordination,
      path: args.file,
      id: args.id,
      name: args.name,
      tenant: args.tenant,
      tileSize: args.tileSize,
      maxSourcePixels: args.maxSourcePixels,
      maxWriteRatio: args.maxWriteRatio,
      ignoreOmeXml: args.ignoreOmeXml,
      tenantQuotaBytes: tenantQuotaBytes(env),
      quotaReservations: new TenantQuotaReservations(env.REDIS_PREFIX, redis),
      catalog: new DatasetCatalog(store),
      onWarning: (w) => io.stderr.write(`warning: ${w}\n`),
      onProgress: (p) => progress.update(p),
      signal: io.signal,
    });
    progress.end();
    const seconds = (Date.now() - started) / 1000;
    const mp = (m.width * m.height * m.sizeZ * m.sizeT * m.channels.length) / 1e6;
    io.stdout.write(
      `ingested ${m.id} v${m.version}: ${describeDataset(m)}` +
        ` in ${seconds.toFixed(1)} s (${(mp / seconds).toFixed(1)} MP/s) → ${store.kind === 'local' ? resolve(env.DATA_DIR) : `s3://${env.S3_BUCKET}/${env.S3_PREFIX}`}\n`,
    );
    return 0;
  } catch (e) {
    progress.end();
    return reportFailure(io, e);
  } finally {
    await store.close?.();
    redis.disconnect();
  }
}

/**
 * An OME-Zarr, linked (no copy) or copied, under the same per-id lock and shared version counter as
 * queued registrations. A linked manifest names the Zarr as the servers read it: "file:<path under
 * INGEST_ROOT>" or the s3:// URL (read with this environment's S3_* connection, as the workers do).
 */
async function registerZarr(args: Args, zarr: { mode: 'link' | 'copy'; source: string }, env: Env, redis: RedisClient, io: CliIo): Promise<number> {
  const store = openObjectStore(storageSettings(env));
  const started = Date.now();
  const coordination = new RedisIngestCoordination(new IngestTracker(env.REDIS_PREFIX, redis), new RetiredVersions(env.REDIS_PREFIX, redis), env.VERSION_GRACE_S * 1000);
  let url: string;
  let ingestRoot = env.INGEST_ROOT;
  if (zarr.source.startsWith('s3://')) {
    url = zarr.source;
  } else if (env.INGEST_ROOT && zarr.source.startsWith(resolve(env.INGEST_ROOT) + sep)) {
    url = `file:${relative(resolve(env.INGEST_ROOT), zarr.source)}`;
  } else if (zarr.mode === 'copy') {
    // A copy is read once, here: any local path will do.
    ingestRoot = resolve(zarr.source, '..');
    url = `file:${relative(ingestRoot, zarr.source)}`;
  } else {
    io.stderr.write(`ingest failed: ${zarr.source} is not under INGEST_ROOT${env.INGEST_ROOT ? ` (${resolve(env.INGEST_ROOT)})` : ' (unset)'}: a linked Zarr is read by the API and workers from there; set INGEST_ROOT or use --copy\nnothing was published.\n`);
    await store.close?.();
    redis.disconnect();
    return 1;
  }
  const s3 = { region: env.S3_REGION, endpoint: env.S3_ENDPOINT, forcePathStyle: env.S3_FORCE_PATH_STYLE, accessKeyId: env.S3_ACCESS_KEY_ID, secretAccessKey: env.S3_SECRET_ACCESS_KEY };
  const places = zarrPlaceResolver({ ingestRoot, s3 });
  const tty = io.stdout.isTTY === true;
  let last = 0;
  let drawn = false;
  const catalog = new DatasetCatalog(store);
  let held: Awaited<ReturnType<RedisIngestCoordination['lock']>>;
  try {
    held = await coordination.lock(args.id, args.tenant ?? 'public');
  } catch (e) {
    held = undefined;
    io.stderr.write(`ingest failed: ${(e as Error).message}\n`);
  }
  if (!held) {
    io.stderr.write(`ingest failed: dataset "${args.id}" is being ingested or deleted by another writer; try again when it is done\nnothing was published.\n`);
    await store.close?.();
    redis.disconnect();
    return 1;
  }
  const heartbeat = setInterval(() => void held.heartbeat().catch(() => undefined), 20_000);
  try {
    const replaced = await catalog.find(args.id);
    const m = await linkZarr({
      url,
      place: places(url),
      library: zarritaLibrary,
      id: args.id,
      name: args.name,
      tenant: args.tenant,
      catalog,
      maxPixels: args.maxSourcePixels ?? 2 ** 40,
      copy: zarr.mode === 'copy',
      tenantQuotaBytes: tenantQuotaBytes(env),
      quotaReservations: new TenantQuotaReservations(env.REDIS_PREFIX, redis),
      versions: coordination,
      signal: io.signal,
      onProgress: (done, total) => {
        const now = Date.now();
        if (done < total && now - last < (tty ? 100 : 2000)) return;
        last = now;
        const pct = total > 0 ? (100 * done) / total : 0;
        const unit = zarr.mode === 'copy' ? 'planes + tiles' : 'planes';
        if (tty) {
          const full = Math.round((pct / 100) * 30);
          io.stdout.write(`\r${zarr.mode.padEnd(7)} [${'#'.repeat(full)}${'-'.repeat(30 - full)}] ${pct.toFixed(1).padStart(5)}%  ${done}/${total} ${unit}\x1b[K`);
          drawn = true;
        } else {
          io.stdout.write(`${zarr.mode} ${args.id}: ${pct.toFixed(1)}%  ${done}/${total} ${unit}\n`);
        }
      },
    });
    if (drawn) io.stdout.write('\n');
    if (replaced && replaced.version !== m.version) await coordination.retire(args.id, replaced.version);
    clearInterval(heartbeat);
    await held.release({ version: m.version });
    const seconds = (Date.now() - started) / 1000;
    io.stdout.write(
      `${zarr.mode === 'link' ? 'linked' : 'copied'} ${m.id} v${m.version}: ${describeDataset(m)}` +
        ` in ${seconds.toFixed(1)} s${zarr.mode === 'link' ? ` (no pixel copied; reads ${url})` : ''}\n`,
    );
    return 0;
  } catch (e) {
    clearInterval(heartbeat);
    if (drawn) io.stdout.write('\n');
    const code = isTilefarmError(e) ? e.code : 'internal';
    await held.release({ code, message: e instanceof Error ? e.message : String(e) }).catch(() => undefined);
    return reportFailure(io, e);
  } finally {
    await store.close?.();
    redis.disconnect();
  }
}

/** The published dataset in one line: size, planes, channels, type, levels. */
function describeDataset(m: DatasetManifest): string {
  return `${m.width}×${m.height}, ${m.sizeZ} z, ${m.sizeT} t, ${m.channels.length} channel(s) [${m.channels.map((c) => c.label).join(', ')}], ${m.dtype}, ${m.levels} levels`;
}

/** A failed ingest on stderr (the table's message, or the stack of an unexpected error); its exit code. */
function reportFailure(io: CliIo, e: unknown): number {
  const message = isTilefarmError(e) ? e.message : `unexpected error: ${(e as Error).stack ?? String(e)}`;
  io.stderr.write(`ingest failed: ${message}\nnothing was published.\n`);
  return io.signal?.aborted ? 130 : 1;
}

/** A Redis connection, or undefined when none answers within a few seconds. */
async function connectRedis(url: string): Promise<RedisClient | undefined> {
  const redis = createRedis(url, 'worker');
  const answered = await Promise.race([redis.ping().then(() => true, () => false), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
  if (answered) return redis;
  redis.disconnect();
  return undefined;
}


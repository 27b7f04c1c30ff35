/**
 * bench:floor — what the fixed parts of the architecture cost per tile on their own, with none of
 * tilefarm's code, against the encoder (issue 15's goal: cold tiles end to end ≥ 0.6 of the bare
 * encoder, grey ≥ 0.8).
 *
 * Every cold tile tilefarm delivers passes through parts the project chose and cannot drop: a BullMQ
 * job (in jobs of 4 tiles, as RENDER_BATCH_TILES), a Socket.IO event to the viewer, an Express GET of
 * the tile, and a JPEG encode by sharp. Each is measured here alone, in its own process, doing
 * nothing else:
 * - BullMQ: a producer adds jobs of 4 tiles in bulk; a worker process takes them 4 at a time with a
 *   processor that does nothing; CPU of the worker, the producer and redis-server per tile.
 * - Socket.IO: a server process emits one tile:ready-sized event (~400 bytes of JSON) per tile to
 *   one websocket client; CPU of the server and the client per event.
 * - Express: a server process answers GET /tiles/:key with a 2,760-byte body from memory (the
 *   e2e tile's size), kept-alive, 6 connections; CPU of the server and of the client per GET.
 * - The encoder: the worker's own (SharpTileEncoder, sharp set up as in the worker) encoding 256² RGB tiles of fluorescence-like pixels made here (blobs on a
 *   dark background with a little noise: ~3 KB at q85, like bench:e2e's tiles), 4 in flight.
 * From these: the least CPU a cold tile can cost with these parts, and so the highest e2e ÷ encode
 * any code built on them could reach on this machine (with the viewer on the same cores, as in
 * bench:e2e, and without it). Nothing is cached: every event, job and GET is new. Each part runs
 * alone here; sharing the cores with the others (bench:e2e) costs each of them more, so this floor,
 * and the ceiling from it, are optimistic.
 * Knob: FLOOR_TILES (8000).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, createServer, get } from 'node:http';
import { cpus } from 'node:os';
import { Queue, Worker } from 'bullmq';
import { connectionFor } from '@tilefarm/queue';
import { configureSharp, SharpTileEncoder } from '@tilefarm/render/encoder';
import express from 'express';
import { Server } from 'socket.io';
import { io } from 'socket.io-client';
import { PrivateRedis } from '../test/support/private-redis';
import { processCpu } from './support/process-cpu';
import { redisSnapshot, diffRedis } from './support/redis-stats';

const TILES = Number(process.env.FLOOR_TILES ?? 8000);
const BATCH = 4;
const BODY = Buffer.alloc(2760, 7);
const EVENT = { key: 'cells/v1/0f3a9c2e81d4b7a6/l0-z7-t0-x5-y3.jpeg', url: 'http://127.0.0.1:8080/tiles/ab/cells/v1/0f3a9c2e81d4b7a6/l0-z7-t0-x5-y3.jpeg', dataset: 'cells', level: 0, z: 7, t: 0, x: 5, y: 3, renderMs: 6.2, spec: '0f3a9c2e81d4b7a6f00d', bytes: 2760, queuedMs: 12.4, version: 1 };

/** Child roles: each serves one part and prints its port (or 'ready') on stdout. */
async function child(role: string, arg: string | undefined): Promise<void> {
  if (role === 'http-server') {
    const app = express();
    app.get('/tiles/:key', (_req, res) => {
      res.set('Content-Type', 'image/jpeg').set('Cache-Control', 'public, max-age=31536000, immutable').send(BODY);
    });
    const server = app.listen(0, '127.0.0.1', () => console.log(String((server.address() as { port: number }).port)));
    return;
  }
  if (role === 'socket-server') {
    const http = createServer();
    const ioServer = new Server(http);
    ioServer.on('connection', (socket) => {
      // The client asks for n events; the server emits them one per tile, as the gateway does.
      socket.on('go', (n: number, ack: () => void) => {
        let sent = 0;
        const burst = () => {
          for (let i = 0; i < 64 && sent < n; i++, sent++) socket.emit('tile:ready', { ...EVENT, y: sent });
          if (sent < n) setImmediate(burst);
          else ack();
        };
        burst();
      });
    });
    http.listen(0, '127.0.0.1', () => console.log(String((http.address() as { port: number }).port)));
    return;
  }
  if (role === 'bullmq-worker') {
    const worker = new Worker('floor', async () => undefined, { connection: connectionFor(arg!, 'worker'), concurrency: BATCH, prefix: 'floor' });
    await worker.waitUntilReady();
    console.log('ready');
    return;
  }
  throw new Error(`unknown role ${role}`);
}

async function startChild(role: string, arg?: string): Promise<{ proc: ChildProcess; line: string }> {
  const proc = spawn(process.execPath, [__filename, role, ...(arg ? [arg] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  // A child that dies before it is ready must fail the bench, not leave it waiting.
  const data = await Promise.race([once(proc.stdout!, 'data').then(([d]) => d as Buffer), once(proc, 'exit').then(() => undefined)]);
  if (!data) throw new Error(`bench:floor: the ${role} process exited before it was ready`);
  return { proc, line: data.toString().trim() };
}

const cpuOf = (p: ChildProcess) => processCpu(p.pid!).total;
const selfCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const msPer = (seconds: number) => (seconds * 1000) / TILES;

/** A warm-up round, then the measured one: CPU ms per tile of the child server and of this process (its client). */
async function serverAndClientCpu(proc: ChildProcess, run: (n: number) => Promise<void>): Promise<{ server: number; client: number }> {
  await run(500); // warm-up: connections, JIT
  const s0 = cpuOf(proc);
  const c0 = selfCpu();
  await run(TILES);
  return { server: msPer(cpuOf(proc) - s0), client: msPer(selfCpu() - c0) };
}

async function measureHttp(): Promise<{ server: number; client: number }> {
  const { proc, line } = await startChild('http-server');
  const agent = new Agent({ keepAlive: true, maxSockets: 6 });
  const getOne = (i: number) =>
    new Promise<void>((resolve, reject) => {
      get(`http://127.0.0.1:${line}/tiles/t${i}`, { agent }, (res) => {
        res.on('data', () => undefined);
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(String(res.statusCode)))));
      }).on('error', reject);
    });
  const run = async (n: number) => {
    let next = 0;
    await Promise.all(Array.from({ length: 6 }, async () => {
      while (next < n) await getOne(next++);
    }));
  };
  const out = await serverAndClientCpu(proc, run);
  agent.destroy();
  proc.kill();
  return out;
}

async function measureSocket(): Promise<{ server: number; client: number }> {
  const { proc, line } = await startChild('socket-server');
  const socket = io(`http://127.0.0.1:${line}`, { transports: ['websocket'], forceNew: true });
  let received = 0;
  socket.on('tile:ready', () => received++);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const run = async (n: number) => {
    const target = received + n;
    await socket.timeout(120_000).emitWithAck('go', n);
    while (received < target) await new Promise((r) => setTimeout(r, 1));
  };
  const out = await serverAndClientCpu(proc, run);
  socket.close();
  proc.kill();
  return out;
}

async function measureBullmq(): Promise<{ worker: number; producer: number; redis: number; commands: number }> {
  const redis = await PrivateRedis.start();
  const { proc } = await startChild('bullmq-worker', redis.url);
  const queue = new Queue('floor', { connection: connectionFor(redis.url, 'producer'), prefix: 'floor' });
  // As the render queue: removed on completion, a small job of 4 tile keys and a spec id.
  const jobs = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({
      name: 'render',
      data: { key: `k${from + i}`, spec: EVENT.spec, dataset: 'cells', version: 1, tiles: [0, 1, 2, 3].map((j) => ({ level: 0, z: 7, t: 0, x: j, y: from + i })) },
      opts: { jobId: `j${from + i}`, priority: 1 + ((from + i) % 100), removeOnComplete: true, removeOnFail: true },
    }));
  const run = async (from: number, n: number) => {
    for (let i = 0; i < n; i += 64) await queue.addBulk(jobs(from + i, Math.min(64, n - i)));
    while ((await queue.getJobCountByTypes('waiting', 'prioritized', 'active', 'delayed')) > 0) await new Promise((r) => setTimeout(r, 5));
  };
  await run(0, 200);
  const jobCount = TILES / BATCH;
  const before = await redisSnapshot(redis.url);
  const w0 = cpuOf(proc);
  const p0 = selfCpu();
  await run(1000, jobCount);
  const after = await redisSnapshot(redis.url);
  const delta = diffRedis(before, after);
  const out = { worker: msPer(cpuOf(proc) - w0), producer: msPer(selfCpu() - p0), redis: msPer(delta.cpuSeconds), commands: delta.totalCalls / TILES };
  await queue.close();
  proc.kill();
  await redis.kill();
  return out;
}

async function measureEncode(): Promise<{ cpu: number; bytes: number }> {
  configureSharp({ cache: false, concurrency: 1 }); // as the worker does
  const encoder = new SharpTileEncoder();
  // Fluorescence-like pixels: smooth blobs over a dark background with a little noise (the e2e
  // tiles come out at 2-3 KB at q85; so do these).
  const rgb = Buffer.alloc(256 * 256 * 3);
  let seed = 1;
  const noise = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 7) - 3;
  for (let y = 0; y < 256; y++) {
    for (let x = 0; x < 256; x++) {
      const blob = 60 * Math.exp(-((x - 90) ** 2 + (y - 140) ** 2) / 2000) + 40 * Math.exp(-((x - 200) ** 2 + (y - 60) ** 2) / 900);
      const i = (y * 256 + x) * 3;
      rgb[i] = Math.max(0, Math.min(255, 8 + blob + noise()));
      rgb[i + 1] = Math.max(0, Math.min(255, 10 + blob * 0.7 + noise()));
      rgb[i + 2] = Math.max(0, Math.min(255, 12 + noise()));
    }
  }
  const encodeOne = () => encoder.encode(rgb, 256, 256, 'jpeg', 85);
  const run = async (n: number) => {
    let next = 0;
    let bytes = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next++ < n) bytes = (await encodeOne()).length;
    }));
    return bytes;
  };
  await run(300);
  const c0 = selfCpu();
  const bytes = await run(TILES / 4);
  return { cpu: ((selfCpu() - c0) * 1000) / (TILES / 4), bytes };
}

async function main(): Promise<void> {
  const cores = cpus().length;
  console.log(`bench:floor — the fixed parts alone, per tile (${TILES} tiles each; ${cores} cores, node ${process.version})\n`);
  const encode = await measureEncode();
  const bull = await measureBullmq();
  const sock = await measureSocket();
  const http = await measureHttp();
  const f = (n: number, d = 3) => n.toFixed(d);
  console.log('| part | CPU ms per tile |\n|---|---|');
  console.log(`| sharp: JPEG q85 encode of a 256² RGB tile (${encode.bytes} bytes), 4 in flight | ${f(encode.cpu)} |`);
  console.log(`| BullMQ worker process, no-op processor (jobs of ${BATCH} tiles) | ${f(bull.worker)} |`);
  console.log(`| BullMQ producer (addBulk) | ${f(bull.producer)} |`);
  console.log(`| redis-server (${f(bull.commands, 1)} commands per tile) | ${f(bull.redis)} |`);
  console.log(`| Socket.IO server: one tile:ready-sized event | ${f(sock.server)} |`);
  console.log(`| Express server: GET of a ${BODY.length}-byte tile, kept-alive | ${f(http.server)} |`);
  const server = bull.worker + bull.producer + bull.redis + sock.server + http.server;
  const viewer = sock.client + http.client;
  console.log(`| **the fixed parts, server side** | **${f(server)}** |`);
  console.log(`| the viewer: Socket.IO client (one event) + node:http GET (as bench:e2e's viewer) | ${f(viewer)} |`);
  // The bare encode runs alone at (at best) cores / encode CPU; a cold tile costs at least encode + floor.
  const ceilingAlone = encode.cpu / (encode.cpu + server);
  const ceilingWithViewer = encode.cpu / (encode.cpu + server + viewer);
  console.log(`\n**Highest e2e ÷ bare encode that code built on these parts can reach here**, if reading the sources, compositing,`);
  console.log(`storing, and all bookkeeping cost nothing: ${f(ceilingWithViewer, 2)} with the viewer on the same cores (as bench:e2e), ${f(ceilingAlone, 2)} without it.`);
  console.log(`Issue 15 asks 0.6 (3 channels) and 0.8 (grey).`);
}

if (process.argv[2]) child(process.argv[2], process.argv[3]).catch((e) => {
  console.error(e);
  process.exit(1);
});
else main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});

/**
 * bench:peer — the same plane served cold by tilefarm's OMERO route and by IIPImage, same run.
 *
 *   tilefarm  the whole system as real processes (API, gateway, 2 workers × 2 in flight, a Redis of
 *             its own, local storage); GET /webgateway/render_image_region/...?tile=0,x,y,256,256
 *             &c=1|lo:hi$FFFFFF&q=0.85 — the API enqueues, a worker renders, the request waits.
 *   IIPImage  Debian's iipimage-server (iipsrv.fcgi), one FastCGI process per core behind nginx
 *             (fastcgi_keep_conn off, nginx's default: no FastCGI keep-alive), on a tiled pyramidal
 *             16-bit TIFF of the very same plane; JTL=level,index&MINMAX=1:lo,hi&QLT=85.
 * The plane: channel 0 of the synthetic fluorescence generator (16-bit, offset and shot noise),
 * 4096², 256 level-0 tiles. Each round asks every level-0 tile once with a window never used
 * before (tilefarm: a new spec, so nothing comes from its tile store; iipsrv keeps no output
 * cache). Both keep raw tiles in memory (tilefarm's source cache 64 MB per worker; iipsrv's
 * MAX_IMAGE_CACHE_SIZE set to 64 MB per process), warmed by the warm-up round. 8 requests in
 * flight over keep-alive HTTP; rounds alternate which server goes first. Both answer 256² JPEG q85
 * (tilefarm's is RGB with grey values, iipsrv's a 1-component grey JPEG).
 * Without iipsrv or nginx it says so and measures tilefarm alone. Knobs: PEER_ROUNDS (4), PEER_IN_FLIGHT (8).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSourceTile } from '@tilefarm/datasets';
import { TestSystem, freePort } from '../test/support/system';
import { PrivateRedis } from '../test/support/private-redis';
import { imageInfo, writePyramidTiff } from './support/sharp-images';

const IIPSRV = process.env.IIPSRV ?? '/usr/lib/iipimage-server/iipsrv.fcgi';
const NGINX = process.env.NGINX ?? '/usr/sbin/nginx';
const ROUNDS = Number(process.env.PEER_ROUNDS ?? 4);
const IN_FLIGHT = Number(process.env.PEER_IN_FLIGHT ?? 8);
const DATASET = { id: 'plane', width: 4096, height: 4096, sizeZ: 1, tileSize: 256 as const };
const COLS = DATASET.width / DATASET.tileSize;
const ROWS = DATASET.height / DATASET.tileSize;
const QUALITY = 85;

interface Peer {
  name: string;
  url(x: number, y: number, window: [number, number]): string;
}

/** nginx + one iipsrv per core, all in a temp dir; stop() ends every process it started. */
async function startIipImage(dir: string, tiff: string): Promise<{ base: string; levels: number; stop(): Promise<void> }> {
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  for (let i = 0; i < cpus().length; i++) {
    const port = await freePort();
    ports.push(port);
    children.push(
      spawn(IIPSRV, ['--bind', `127.0.0.1:${port}`, '--backlog', '1024'], {
        env: { PATH: process.env.PATH ?? '', LOGFILE: join(dir, `iipsrv-${i}.log`), VERBOSITY: '0', MAX_IMAGE_CACHE_SIZE: '64', JPEG_QUALITY: String(QUALITY), FILESYSTEM_PREFIX: '' },
        stdio: 'ignore',
      }),
    );
  }
  const httpPort = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes ${cpus().length};
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'nginx-error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; fastcgi_temp_path ${dir}/fcgi; proxy_temp_path ${dir}/proxy; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream iip { ${ports.map((p) => `server 127.0.0.1:${p};`).join(' ')} }
  server {
    listen 127.0.0.1:${httpPort};
    location /fcgi-bin/iipsrv.fcgi {
      fastcgi_pass iip;
      fastcgi_param QUERY_STRING $query_string;
      fastcgi_param REQUEST_METHOD $request_method;
      fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      fastcgi_param SERVER_NAME $server_name;
      fastcgi_param SERVER_PORT $server_port;
      fastcgi_param SERVER_PROTOCOL $server_protocol;
      fastcgi_param REQUEST_URI $request_uri;
    }
  }
}
`,
  );
  const nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  children.push(nginx);
  const base = `http://127.0.0.1:${httpPort}/fcgi-bin/iipsrv.fcgi?FIF=${encodeURIComponent(tiff)}`;
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((r) => {
            if (c.exitCode !== null || c.signalCode !== null) return r();
            c.once('exit', () => r());
            c.kill('SIGTERM');
          }),
      ),
    );
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`${base}&OBJ=Resolution-number`);
      const text = await res.text();
      const levels = Number(/Resolution-number:(\d+)/.exec(text)?.[1]);
      if (res.ok && levels > 0) return { base, levels, stop };
      if (Date.now() > deadline) throw new Error(`iipsrv answered ${res.status}: ${text.slice(0, 200)}`);
    } catch (e) {
      if (Date.now() > deadline) {
        await stop();
        throw e;
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface RoundResult {
  tilesPerSecond: number;
  bytes: number;
  p50: number;
  p99: number;
}

async function round(peer: Peer, window: [number, number]): Promise<RoundResult> {
  const tiles = Array.from({ length: COLS * ROWS }, (_, i) => ({ x: i % COLS, y: Math.floor(i / COLS) }));
  let next = 0;
  let bytes = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < tiles.length) {
        const t = tiles[next++]!;
        const t0 = performance.now();
        const res = await fetch(peer.url(t.x, t.y, window));
        const body = Buffer.from(await res.arrayBuffer());
        if (!res.ok || body.length < 100) throw new Error(`${peer.name} ${t.x},${t.y}: ${res.status} ${body.toString().slice(0, 200)}`);
        latencies.push(performance.now() - t0);
        bytes += body.length;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { tilesPerSecond: tiles.length / seconds, bytes: bytes / tiles.length, p50: latencies[Math.floor(latencies.length / 2)]!, p99: latencies[Math.floor(latencies.length * 0.99)]! };
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const installed = existsSync(IIPSRV) && existsSync(NGINX);
  const version = installed ? (spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'iipimage-server']).stdout?.toString() ?? '?') : '';
  console.log(
    `bench:peer — one 4096² 16-bit plane, ${COLS * ROWS} cold level-0 256² JPEG q${QUALITY} tiles per round, ${IN_FLIGHT} requests in flight, ${ROUNDS} rounds after a warm-up, ${cpus().length} cores, node ${process.version}`,
  );
  if (!installed) {
    console.log(`\nPEER NOT INSTALLED: ${!existsSync(IIPSRV) ? IIPSRV : NGINX} is missing (apt-get install iipimage-server nginx). Measuring tilefarm alone; no ratio.\n`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'tilefarm-peer-'));
  const redis = await PrivateRedis.start();
  // PEER_PROFILE_DIR=dir: every app process runs with --cpu-prof, its profile written there at exit.
  const profileDir = process.env.PEER_PROFILE_DIR;
  const system = await TestSystem.start({
    workers: 2,
    redisUrl: redis.url,
    datasets: [DATASET],
    env: { LOG_LEVEL: 'warn' },
    readyTimeoutMs: 120_000,
    nodeArgs: (name) => (profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(profileDir, name)] : []),
  });
  let iip: Awaited<ReturnType<typeof startIipImage>> | undefined;
  try {
    const peers: Peer[] = [
      {
        name: 'tilefarm OMERO route',
        url: (x, y, [lo, hi]) => `${system.apiUrl}/webgateway/render_image_region/${DATASET.id}/0/0/?tile=0,${x},${y},256,256&c=${encodeURIComponent(`1|${lo}:${hi}$FFFFFF`)}&m=c&q=${QUALITY / 100}&format=jpeg`,
      },
    ];
    if (installed) {
      // The same plane, sample for sample, as the pyramidal TIFF IIPImage reads.
      const plane = new Uint16Array(DATASET.width * DATASET.height);
      for (let y = 0; y < ROWS; y++) {
        for (let x = 0; x < COLS; x++) {
          const tile = await readSourceTile(system.store, DATASET.id, 1, { level: 0, x, y, c: 0, z: 0, t: 0 });
          for (let row = 0; row < tile.height; row++) {
            plane.set((tile.data as Uint16Array).subarray(row * tile.width, (row + 1) * tile.width), (y * 256 + row) * DATASET.width + x * 256);
          }
        }
      }
      const tiff = join(dir, 'plane.tif');
      await writePyramidTiff(tiff, plane, DATASET.width, DATASET.height);
      iip = await startIipImage(dir, tiff);
      const full = iip.levels - 1;
      const base = iip.base;
      peers.push({ name: `IIPImage ${version} (nginx + ${cpus().length} FastCGI)`, url: (x, y, [lo, hi]) => `${base}&MINMAX=1:${lo},${hi}&QLT=${QUALITY}&JTL=${full},${y * COLS + x}` });
    }
    let serial = Math.floor(Math.random() * 1000);
    const windowOnce = (): [number, number] => {
      const w = serial++;
      return [90 + w, 2500 + 3 * w];
    };
    // Warm-up: processes, connections, raw caches (both sides read the plane once).
    for (const p of peers) await round(p, windowOnce());
    for (const p of peers) {
      const info = await imageInfo(Buffer.from(await (await fetch(p.url(1, 1, windowOnce()))).arrayBuffer()));
      if (info.format !== 'jpeg' || info.width !== 256 || info.height !== 256) throw new Error(`${p.name} answered ${JSON.stringify(info)}`);
    }
    const results = new Map<string, RoundResult[]>(peers.map((p) => [p.name, []]));
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? peers : [...peers].reverse();
      for (const p of order) {
        const res = await round(p, windowOnce());
        results.get(p.name)!.push(res);
        console.log(`  round ${r + 1} ${p.name}: ${res.tilesPerSecond.toFixed(0)} tiles/s (p50 ${res.p50.toFixed(0)} ms, p99 ${res.p99.toFixed(0)} ms)`);
      }
    }
    console.log('\n| server | tiles/s per round | median tiles/s | latency p50 / p99 (median round) | bytes per tile |\n|---|---|---|---|---|');
    for (const p of peers) {
      const rs = results.get(p.name)!;
      console.log(
        `| ${p.name} | ${rs.map((x) => x.tilesPerSecond.toFixed(0)).join(', ')} | ${median(rs.map((x) => x.tilesPerSecond)).toFixed(0)} | ${median(rs.map((x) => x.p50)).toFixed(0)} / ${median(rs.map((x) => x.p99)).toFixed(0)} ms | ${median(rs.map((x) => x.bytes)).toFixed(0)} |`,
      );
    }
    if (peers.length === 2) {
      const a = results.get(peers[0]!.name)!;
      const b = results.get(peers[1]!.name)!;
      const ratios = a.map((x, i) => x.tilesPerSecond / b[i]!.tilesPerSecond);
      console.log(`\n**tilefarm ÷ IIPImage** (goal ≥ 2): per round ${ratios.map((x) => x.toFixed(2)).join(', ')}; median **${median(ratios).toFixed(2)}**`);
    } else {
      console.log('\ntilefarm ÷ IIPImage: not measured (peer not installed)');
    }
  } finally {
    await iip?.stop();
    await system.stop();
    await redis.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

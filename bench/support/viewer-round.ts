/**
 * One viewer's cold round, as the end-to-end benches measure it: over its socket it asks for tiles
 * nobody has rendered and fetches each one from its URL as it is announced (6 at a time, like a
 * browser); the clock stops at the last byte.
 */
import { Agent, get } from 'node:http';
import type { RenderSpecInput, Viewport } from '@tilefarm/contracts';
import { TestViewer } from '../../test/support/socket-client';

/** Tile GETs in flight per viewer: a browser keeps 6 connections per host. */
export const FETCHES_IN_FLIGHT = 6;

export interface RoundTile {
  level: number;
  z: number;
  t: number;
  x: number;
  y: number;
  format: 'jpeg';
}

export interface DeliveredRound {
  tiles: number;
  seconds: number;
  /** The delivered tiles' bytes, in the order asked. */
  bodies: Buffer[];
  socketIn: number;
  socketOut: number;
}

/**
 * The viewer's tile GETs: node's HTTP client on kept-alive connections, as many as it fetches at
 * once. Until session 7 this was fetch() (undici), which spent ~0.7 ms of the bench's CPU per
 * 2-3 KB tile, on the same 2 cores as the system it measured: a browser's network stack is native
 * and costs the page little. E2E_CLIENT=fetch: the old client, for comparing with earlier runs.
 */
const tileAgent = new Agent({ keepAlive: true, maxSockets: FETCHES_IN_FLIGHT });
const FETCH_CLIENT = process.env.E2E_CLIENT === 'fetch';
function getTile(url: string): Promise<Buffer> {
  if (FETCH_CLIENT) {
    return fetch(url).then(async (r) => {
      if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
      return Buffer.from(await r.arrayBuffer());
    });
  }
  return new Promise((resolve, reject) => {
    get(url, { agent: tileAgent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** A viewer connected to the gateway; `run` is one round (the caller reads its counters around it). */
export async function connectedViewer(gatewayUrl: string): Promise<{ run(dataset: string, spec: RenderSpecInput, tiles: RoundTile[]): Promise<DeliveredRound>; viewport(view: Omit<Viewport, 'spec'> & { spec: string | RenderSpecInput }): void; close(): void }> {
  const viewer = new TestViewer(gatewayUrl);
  await viewer.connected();
  let socketIn = 0;
  let socketOut = 0;
  const engine = viewer.socket.io.engine as unknown as { on(e: string, f: (p: { data?: unknown }) => void): void };
  const size = (d: unknown) => (typeof d === 'string' ? Buffer.byteLength(d) : ((d as { byteLength?: number } | undefined)?.byteLength ?? 0));
  engine.on('packet', (p) => (socketIn += size(p.data)));
  engine.on('packetCreate', (p) => (socketOut += size(p.data)));
  const bodies = new Map<string, Buffer>();
  const queue: string[] = [];
  let fetching = 0;
  let failure: unknown;
  const pump = () => {
    while (fetching < FETCHES_IN_FLIGHT && queue.length > 0) {
      const key = queue.shift()!;
      fetching++;
      getTile(viewer.delivered.get(key)!)
        .then((body) => bodies.set(key, body))
        .catch((e) => (failure = e))
        .finally(() => {
          fetching--;
          pump();
        });
    }
  };
  const seen = new Set<string>();
  const fetchOnce = (key: string) => {
    if (seen.has(key)) return;
    seen.add(key);
    queue.push(key);
    pump();
  };
  /** The tiles this round asked for: only those are fetched (a tile prefetched for a viewport is fetched once asked for, as the viewer does). */
  const wanted = new Set<string>();
  viewer.socket.on('tile:ready', (e) => {
    if (wanted.has(e.key)) fetchOnce(e.key);
  });

  return {
    async run(dataset, spec, tiles) {
      socketIn = 0;
      socketOut = 0;
      bodies.clear();
      seen.clear();
      wanted.clear();
      const started = performance.now();
      const keys: string[] = [];
      for (let i = 0; i < tiles.length; i += 256) {
        const ack = await viewer.request({ dataset, spec, tiles: tiles.slice(i, i + 256) });
        if (!ack.ok) throw new Error(ack.error.message);
        for (const t of [...ack.ready, ...ack.pending]) {
          wanted.add(t.key);
          // Announced already (before this answer, or prefetched earlier): fetched now.
          if (viewer.delivered.has(t.key)) fetchOnce(t.key);
        }
        keys.push(...ack.pending.map((p) => p.key), ...ack.ready.map((r) => r.key));
      }
      if (keys.length !== tiles.length) throw new Error(`asked for ${tiles.length} tiles, ${keys.length} acknowledged`);
      while (bodies.size < keys.length) {
        if (failure) throw failure;
        if (viewer.failed.size > 0) throw new Error(`tile failed: ${JSON.stringify([...viewer.failed.values()][0])}`);
        if (performance.now() - started > 600_000) throw new Error(`${keys.length - bodies.size} tiles never arrived`);
        await new Promise((r) => setTimeout(r, 2));
      }
      const seconds = (performance.now() - started) / 1000;
      return { tiles: keys.length, seconds, bodies: keys.map((k) => bodies.get(k)!), socketIn, socketOut };
    },
    /** Where the viewer looks: the gateway ranks and prefetches around it (±PREFETCH_Z slices). */
    viewport: (view) => viewer.socket.emit('viewport', view),
    close: () => viewer.close(),
  };
}

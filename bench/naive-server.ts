/**
 * The design tilefarm replaces, for bench:push's baseline: one Express process that renders each
 * tile with sharp inside the HTTP request, in arrival order, with no queue, no coalescing and no
 * cancellation. Same render work as a tilefarm worker: the same renderer (createTileRenderer),
 * the same source reads (readSourceTile through the same byte-bounded cache), the same storage.
 *
 * Run by bench/push.ts as its own process:
 *   DATA_DIR=<local store> PORT=<port> SOURCE_CACHE_MB=<a worker's source cache> node naive-server.js
 */
import express from 'express';
import { TilefarmError, type SourceTile } from '@tilefarm/contracts';
import { DatasetCatalog, readSourceTile } from '@tilefarm/datasets';
import { LruByteCache } from '@tilefarm/render';
import { configureSharp, createSharpTileRenderer } from '@tilefarm/render/encoder';
import { LocalObjectStore } from '@tilefarm/storage';
import { SpecRegistry } from '@tilefarm/tile-requests';

function main(): void {
  const dataDir = process.env.DATA_DIR;
  if (!dataDir) throw new Error('DATA_DIR is required');
  const port = Number(process.env.PORT ?? 0);
  configureSharp({ cache: false, concurrency: 1 }); // as the worker does
  const store = new LocalObjectStore(dataDir);
  const catalog = new DatasetCatalog(store);
  const specs = new SpecRegistry(store);
  const renderer = createSharpTileRenderer();
  // The same bytes as one tilefarm worker's source cache (bench/push.ts passes its SOURCE_CACHE_MB).
  const sourceCache = new LruByteCache<string, SourceTile>({ maxBytes: Number(process.env.SOURCE_CACHE_MB ?? 64) * 1024 * 1024 });
  let renders = 0;
  let inFlight = 0;
  let maxInFlight = 0;

  const app = express();
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/stats', (_req, res) => {
    res.json({ renders, inFlight, maxInFlight });
  });
  app.get('/tiles/:dataset/:specId/:level/:z/:t/:x/:y.jpeg', async (req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const started = performance.now();
      const p = req.params;
      const [level, z, t, x, y] = [p.level, p.z, p.t, p.x, p.y].map(Number) as [number, number, number, number, number];
      const manifest = await catalog.get(p.dataset);
      const stats = await catalog.getStats(manifest.id, manifest.version);
      const spec = await specs.get(p.specId);
      const readSource = (c: number, zz: number, tt: number) =>
        sourceCache.getOrLoad(`${manifest.id}/${manifest.version}/${level}/${tt}/${zz}/${c}/${x}/${y}`, () => readSourceTile(store, manifest.id, manifest.version, { level, t: tt, z: zz, c, x, y }));
      const rendered = await renderer.render({ manifest, stats, spec, tile: { level, z, t, x, y, format: 'jpeg' }, readSource });
      renders++;
      // What the bench splits a first tile's time by (the worker reports the same in tile:ready).
      res.set('x-render-ms', (performance.now() - started).toFixed(1));
      res.type(rendered.contentType).send(rendered.body);
    } catch (e) {
      const error = e instanceof TilefarmError ? e : new TilefarmError('render_failed', String(e));
      res.status(error.status).json(error.toBody());
    } finally {
      inFlight--;
    }
  });
  const server = app.listen(port, '127.0.0.1', () => {
    const address = server.address();
    console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : port }));
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

main();

import { request as httpRequest } from 'node:http';
import { resolve, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as zarr from 'zarrita';
import { readSourceTile } from '@tilefarm/datasets';
import { ingestFile } from '@tilefarm/ingest';
import { levelGrid, type DatasetManifest } from '@tilefarm/contracts';
import { TestSystem } from '../support/system';

// Issue 13, "Out": every dataset as a read-only OME-Zarr 0.4, read here by a real Zarr client
// (zarrita over HTTP), compared with the source: the fixture's known value and the stored source tiles.

const FIXTURES = resolve(__dirname, '../../../shared/fixtures');

/** Raw HTTP (fetch would decode Content-Encoding itself): status, headers and the bytes as sent. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((done, fail) => {
    const req = httpRequest(url, { headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('GET /zarr/{id}.zarr: OME-Zarr 0.4 view read by zarrita over HTTP', () => {
  let system: TestSystem;
  let manifest: DatasetManifest;
  beforeAll(async () => {
    system = await TestSystem.start({ workers: 0, gateways: 1 });
    manifest = await ingestFile({ path: join(FIXTURES, 'pyramid-4c-3z.ome.tif'), id: 'pyr', catalog: system.catalog });
  }, 120_000);
  afterAll(async () => {
    await system?.stop();
  });

  it('serves group, multiscales + omero, per-level arrays and raw uint16 chunks equal to the source', async () => {
    const store = new zarr.FetchStore(`${system.apiUrl}/zarr/pyr.zarr`);
    const group = await zarr.open.v2(zarr.root(store), { kind: 'group' });
    const attrs = group.attrs as { multiscales: { axes: { name: string }[]; datasets: { path: string }[] }[]; omero: { channels: { label: string; color: string; window: { start: number; end: number } }[] } };
    expect(attrs.multiscales[0]!.axes.map((a) => a.name)).toEqual(['t', 'c', 'z', 'y', 'x']);
    expect(attrs.multiscales[0]!.datasets.map((d) => d.path)).toEqual(Array.from({ length: manifest.levels }, (_, k) => String(k)));
    expect(attrs.omero.channels.map((c) => c.label)).toEqual(['DAPI', 'GFP', 'mCherry', 'Cy5']);
    expect(attrs.omero.channels[0]!.window.start).toBe(manifest.channels[0]!.window[0]);

    const level0 = await zarr.open.v2(zarr.root(store).resolve('0'), { kind: 'array' });
    expect(level0.shape).toEqual([1, 4, 3, 900, 1300]);
    expect(level0.dtype).toBe('uint16');
    // The fixture README's known value: z=1, c=0, y=123, x=456 → 211.
    const one = await zarr.get(level0, [0, 0, 1, 123, 456]);
    expect(one).toBe(211);

    for (let level = 0; level < 3; level++) {
      const arr = await zarr.open.v2(zarr.root(store).resolve(String(level)), { kind: 'array' });
      expect(arr.dtype).toBe('uint16');
      const grid = levelGrid(manifest, level);
      for (const [c, z, wantY, wantX] of [[0, 1, 0, 0], [3, 2, 1, 1], [2, 0, 0, 1], [1, 1, 9, 9]] as const) {
        const ty = Math.min(wantY, grid.rows - 1);
        const tx = Math.min(wantX, grid.cols - 1);
        const src = await readSourceTile(system.store, 'pyr', manifest.version, { level, t: 0, z, c, x: tx, y: ty });
        const region = await zarr.get(arr, [0, c, z, zarr.slice(ty * 256, ty * 256 + src.height), zarr.slice(tx * 256, tx * 256 + src.width)]);
        expect(region.shape).toEqual([src.height, src.width]);
        expect(Buffer.from((region.data as Uint16Array).buffer).equals(Buffer.from(src.data.buffer, src.data.byteOffset, src.data.byteLength))).toBe(true);
      }
    }
  });

  it('?spec= fills the omero block from a render spec', async () => {
    const created = await fetch(`${system.apiUrl}/v1/specs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ channels: [{ index: 1, color: '#ff8800', window: [200, 900] }, { label: 'Cy5', color: '#00ffff' }] }),
    });
    expect(created.status).toBeLessThan(300);
    const { id } = (await created.json()) as { id: string };
    const attrs = (await (await fetch(`${system.apiUrl}/zarr/pyr.zarr/.zattrs?spec=${id}`)).json()) as { omero: { channels: { color: string; active: boolean; window: { start: number; end: number } }[] } };
    expect(attrs.omero.channels.map((c) => c.active)).toEqual([false, true, false, true]);
    expect(attrs.omero.channels[1]).toMatchObject({ color: 'FF8800', window: { start: 200, end: 900 } });
    expect(attrs.omero.channels[3]!.color).toBe('00FFFF');
  });

  it('sends chunks gzip-compressed on the wire to clients that accept it (Content-Encoding), raw to others', async () => {
    const url = `${system.apiUrl}/zarr/pyr.zarr/0/0/1/1/0/1`;
    const plain = await rawGet(url, {});
    const gz = await rawGet(url, { 'accept-encoding': 'gzip, deflate, br' });
    expect([plain.status, gz.status]).toEqual([200, 200]);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(String(gz.headers.vary)).toMatch(/Accept-Encoding/i);
    expect(plain.body.length).toBe(256 * 256 * 2);
    expect(gunzipSync(gz.body).equals(plain.body)).toBe(true);
    expect(gz.body.length).toBeLessThan(plain.body.length * 0.8);
    // Each representation has its own ETag, and revalidates as itself.
    expect(gz.headers.etag).not.toBe(plain.headers.etag);
    expect((await rawGet(url, { 'accept-encoding': 'gzip', 'if-none-match': String(gz.headers.etag) })).status).toBe(304);
    expect((await rawGet(url, { 'accept-encoding': 'gzip;q=0', 'if-none-match': String(gz.headers.etag) })).status).toBe(200);
    // The documents still declare no Zarr compressor: clients decode nothing themselves.
    expect(((await (await fetch(`${system.apiUrl}/zarr/pyr.zarr/0/.zarray`)).json()) as { compressor: unknown }).compressor).toBeNull();
  });

  it('answers 404 for keys outside the arrays and unknown datasets', async () => {
    for (const path of ['/zarr/pyr.zarr/0/0/0/0/99/0', '/zarr/pyr.zarr/9/.zarray', '/zarr/pyr.zarr/0/0/9/0/0/0', '/zarr/nope.zarr/.zgroup', '/zarr/pyr.zarr/0/x/0/0/0/0']) {
      const res = await fetch(`${system.apiUrl}${path}`);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
    }
  });
});

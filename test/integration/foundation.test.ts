import sharp from 'sharp';
import { readSourceTile } from '@tilefarm/datasets';
import { TestSystem } from '../support/system';
import { TestViewer } from '../support/socket-client';

// Issue 2's end-to-end proof: api, gateway and two workers as separate OS processes, real Redis,
// real storage (local here, S3 protocol in the second suite), tiles decoded and checked pixel by pixel.

const DATASET = { id: 'cells', width: 600, height: 300, sizeZ: 3, tileSize: 256 as const };
const SPEC = {
  channels: [
    { index: 0, color: '#ff0000', window: [100, 1500] as [number, number] },
    { index: 1, color: '#00ff00', window: [100, 1200] as [number, number] },
    { index: 2, active: false },
  ],
  format: 'png' as const,
};

async function decode(body: Buffer) {
  const { data, info } = await sharp(body).raw().toBuffer({ resolveWithObject: true });
  return { data, info };
}

/** The spec's picture computed independently from the source pixels: window, colour, clamped sum. */
async function expectedPixels(system: TestSystem, version: number, tile: { level: number; z: number; x: number; y: number }) {
  const [c0, c1] = await Promise.all([0, 1].map((c) => readSourceTile(system.store, DATASET.id, version, { ...tile, t: 0, c })));
  const n = (v: number, lo: number, hi: number) => Math.min(1, Math.max(0, (v - lo) / (hi - lo)));
  const out = new Uint8Array(c0!.width * c0!.height * 3);
  for (let i = 0; i < c0!.width * c0!.height; i++) {
    out[i * 3] = Math.round(255 * n(c0!.data[i]!, 100, 1500));
    out[i * 3 + 1] = Math.round(255 * n(c1!.data[i]!, 100, 1200));
    out[i * 3 + 2] = 0;
  }
  return { width: c0!.width, height: c0!.height, rgb: out };
}

function maxDiff(a: Uint8Array | Buffer, b: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe.each(['local', 's3'] as const)('foundation end to end (%s storage)', (storage) => {
  let system: TestSystem;
  let specId: string;

  beforeAll(async () => {
    system = await TestSystem.start({ workers: 2, storage, datasets: [DATASET] });
    const res = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(SPEC) });
    expect(res.status).toBe(201);
    specId = ((await res.json()) as { id: string }).id;
  }, 60_000);
  afterAll(() => system?.stop());

  it('renders a tile over HTTP whose pixels match the spec, edge tiles cropped', async () => {
    for (const t of [{ level: 0, z: 1, x: 0, y: 0 }, { level: 0, z: 2, x: 2, y: 1 }, { level: 1, z: 0, x: 1, y: 0 }]) {
      const res = await fetch(`${system.apiUrl}/v1/tiles/${DATASET.id}/${specId}/${t.level}/${t.z}/0/${t.x}/${t.y}.png`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{20}"$/);
      const { data, info } = await decode(Buffer.from(await res.arrayBuffer()));
      const expected = await expectedPixels(system, 1, t);
      expect([info.width, info.height, info.channels]).toEqual([expected.width, expected.height, 3]);
      expect(maxDiff(data, expected.rgb)).toBeLessThanOrEqual(1);
    }
    // 600 x 300 at 256: the last column is 88 wide, the last row 44 high.
    const edge = await fetch(`${system.apiUrl}/v1/tiles/${DATASET.id}/${specId}/0/0/0/2/1.png`);
    const { info } = await decode(Buffer.from(await edge.arrayBuffer()));
    expect([info.width, info.height]).toEqual([88, 44]);
  });

  it('answers a cached tile with its ETag (304) and wait=0 with 202 and the job state', async () => {
    const url = `${system.apiUrl}/v1/tiles/${DATASET.id}/${specId}/0/1/0/0/0.png`;
    const first = await fetch(url);
    const etag = first.headers.get('etag')!;
    expect((await fetch(url, { headers: { 'if-none-match': etag } })).status).toBe(304);
    const pinned = await fetch(`${url}?v=1`);
    expect(pinned.headers.get('cache-control')).toContain('immutable');
    const cold = await fetch(`${system.apiUrl}/v1/tiles/${DATASET.id}/${specId}/2/2/0/0/0.jpeg?wait=0`);
    expect(cold.status).toBe(202);
    const body = (await cold.json()) as { key: string; url: string };
    expect(body.key).toMatch(/\.jpeg$/);
  });

  it('delivers tiles over one socket: ack ready for stored tiles, tile:ready for the rest, URLs that decode', async () => {
    const viewer = new TestViewer(system.gatewayUrl());
    try {
      await viewer.connected();
      const tiles = [0, 1, 2].flatMap((z) => [0, 1].map((x) => ({ level: 0, z, t: 0, x, y: 0, format: 'png' as const })));
      const ack = await viewer.request({ dataset: DATASET.id, spec: specId, tiles });
      if (!ack.ok) throw new Error(ack.error.message);
      expect(ack.ready.length + ack.pending.length).toBe(tiles.length);
      expect(ack.ready.length).toBeGreaterThan(0); // z=1 (0,0) and z=2 … were rendered by the HTTP test
      await viewer.waitFor([...ack.ready, ...ack.pending].map((t) => t.key));
      expect(viewer.failed.size).toBe(0);
      expect(new Set(viewer.deliveries).size).toBe(viewer.deliveries.length); // each tile once
      for (const t of [...ack.ready, ...ack.pending]) {
        const res = await fetch(viewer.delivered.get(t.key)!);
        expect(res.status).toBe(200);
        expect(res.headers.get('cache-control')).toContain('immutable');
        const { data } = await decode(Buffer.from(await res.arrayBuffer()));
        const expected = await expectedPixels(system, 1, t.tile);
        expect(maxDiff(data, expected.rgb)).toBeLessThanOrEqual(1);
      }
      // An inline spec works the same and hashes to the same id.
      const inline = await viewer.request({ dataset: DATASET.id, spec: SPEC, tiles: [tiles[0]!] });
      expect(inline.ok && inline.specId).toBe(specId);
    } finally {
      viewer.close();
    }
  });

  it('renders each of 50 tiles exactly once when 20 clients ask for them at once', async () => {
    const spec = { channels: [{ index: 2, lut: 'fire' }], format: 'jpeg' };
    // Every tile of the pyramid (27 per format: 18 + 6 + 3) in two formats, first 50.
    const grid = [{ level: 0, cols: 3, rows: 2 }, { level: 1, cols: 2, rows: 1 }, { level: 2, cols: 1, rows: 1 }];
    const want = (['jpeg', 'png'] as const)
      .flatMap((format) => grid.flatMap(({ level, cols, rows }) => [0, 1, 2].flatMap((z) => Array.from({ length: cols * rows }, (_, i) => ({ level, z, t: 0, x: i % cols, y: Math.floor(i / cols), format })))))
      .slice(0, 50);
    const before = await system.workerCounter('tilefarm_renders_total');
    const viewers = Array.from({ length: 20 }, () => new TestViewer(system.gatewayUrl()));
    try {
      await Promise.all(viewers.map((v) => v.connected()));
      const acks = await Promise.all(viewers.map((v) => v.request({ dataset: DATASET.id, spec, tiles: want })));
      const keys = new Set<string>();
      for (const a of acks) {
        if (!a.ok) throw new Error(a.error.message);
        for (const t of [...a.ready, ...a.pending]) keys.add(t.key);
      }
      expect(keys.size).toBe(50);
      await Promise.all(viewers.map((v) => v.waitFor(keys)));
      for (const v of viewers) {
        expect(v.delivered.size).toBe(50);
        expect(v.deliveries.length).toBe(50);
      }
      const after = await system.workerCounter('tilefarm_renders_total');
      expect(after - before).toBe(50);
    } finally {
      viewers.forEach((v) => v.close());
    }
  });

  it('answers bad input with a clear 4xx and keeps running', async () => {
    const base = `${system.apiUrl}/v1/tiles`;
    const cases: Array<[string, RequestInit | undefined, number, string]> = [
      [`${base}/nope/${specId}/0/0/0/0/0.png`, undefined, 404, 'dataset_not_found'],
      [`${base}/${DATASET.id}/${specId}/9/0/0/0/0.png`, undefined, 400, 'out_of_range'],
      [`${base}/${DATASET.id}/${specId}/0/3/0/0/0.png`, undefined, 400, 'out_of_range'],
      [`${base}/${DATASET.id}/${specId}/0/0/1/0/0.png`, undefined, 400, 'out_of_range'],
      [`${base}/${DATASET.id}/${specId}/0/0/0/3/0.png`, undefined, 400, 'out_of_range'],
      [`${base}/${DATASET.id}/${specId}/0/0/0/0/2.png`, undefined, 400, 'out_of_range'],
      [`${base}/${DATASET.id}/${specId}/0/0/0/0/-1.png`, undefined, 400, 'invalid_tile'],
      [`${base}/${DATASET.id}/${specId}/0/0/0/0/0.gif`, undefined, 400, 'unknown_format'],
      [`${base}/${DATASET.id}/s0000000000000000/0/0/0/0/0.png`, undefined, 404, 'spec_not_found'],
      [`${base}/${DATASET.id}/not-a-spec/0/0/0/0/0.png`, undefined, 400, 'invalid_spec'],
      [`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"channels":[{"index":0,"window":[9,1]}],"format":"gif"}' }, 400, 'invalid_spec'],
      [`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"channels":[' }, 400, 'bad_request'],
      [`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channels: [{ formula: 'c0 +* 2' }] }) }, 400, 'invalid_formula'],
      [`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channels: [{ index: 0 }], pad: 'x'.repeat(200_000) }) }, 413, 'payload_too_large'],
      [`${system.apiUrl}/v1/nothing`, undefined, 404, 'not_found'],
    ];
    for (const [url, init, status, code] of cases) {
      const res = await fetch(url, init);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect({ url, status: res.status, code: body.error.code }).toEqual({ url, status, code });
      expect(body.error.message).not.toMatch(/\n\s+at |\/work\/|node_modules/);
    }
    // A spec valid in general but not for this dataset fails when used, naming the channel.
    const wrong = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channels: [{ index: 7 }] }) });
    const wrongId = ((await wrong.json()) as { id: string }).id;
    const used = await fetch(`${base}/${DATASET.id}/${wrongId}/0/0/0/0/0.png`);
    expect(used.status).toBe(400);
    expect(((await used.json()) as { error: { message: string } }).error.message).toContain('channels.0.index');
    expect((await fetch(`${system.apiUrl}/healthz`)).status).toBe(200);
    for (const p of system.processes) expect(p.child.exitCode).toBeNull();
  });

  it('answers malformed socket events with an error acknowledgement, never a dropped socket', async () => {
    const viewer = new TestViewer(system.gatewayUrl());
    try {
      await viewer.connected();
      const bad = await viewer.request({ dataset: DATASET.id, spec: specId, tiles: [{ level: 'zero' }] });
      expect(bad).toMatchObject({ ok: false, error: { code: 'bad_request' } });
      if (!bad.ok) expect(bad.error.message).toContain('tiles.0.level');
      const out = await viewer.request({ dataset: DATASET.id, spec: specId, tiles: [{ level: 0, z: 0, t: 0, x: 99, y: 0 }] });
      expect(out).toMatchObject({ ok: false, error: { code: 'out_of_range' } });
      const unknown = await viewer.request({ dataset: 'missing', spec: specId, tiles: [{ level: 0, z: 0, t: 0, x: 0, y: 0 }] });
      expect(unknown).toMatchObject({ ok: false, error: { code: 'dataset_not_found' } });
      expect(viewer.socket.connected).toBe(true);
    } finally {
      viewer.close();
    }
  });
});

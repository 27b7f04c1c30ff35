import sharp from 'sharp';
import { TestSystem } from '../support/system';

// Issue 12: IIIF Image API 3.0, Deep Zoom and CATMAID URLs against the real processes. Grid-aligned
// requests are the very tiles /v1/tiles serves (same content key); everything else is a region
// render by a worker, checked pixel by pixel against the same area cut from full-resolution tiles.

// 1100x700 at 256 px: levels 0..3 (1100x700, 550x350, 275x175, 138x88), edge tiles on both axes.
const DATASET = { id: 'proto-cells', width: 1100, height: 700, sizeZ: 3, tileSize: 256 as const };
const TS = 256;

interface Raw {
  width: number;
  height: number;
  channels: number;
  data: Buffer;
}

async function decode(body: Buffer): Promise<Raw> {
  const { data, info } = await sharp(body).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data };
}

async function get(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, type: res.headers.get('content-type'), key: res.headers.get('x-tile-key'), headers: res.headers, body };
}

/** The largest difference between two RGB images of the same size. */
function maxDiff(a: Raw, b: Raw): number {
  expect([a.width, a.height, a.channels]).toEqual([b.width, b.height, b.channels]);
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i]! - b.data[i]!));
  return max;
}

function cut(full: Raw, x: number, y: number, w: number, h: number, step = 1): Raw {
  const ow = Math.ceil(w / step);
  const oh = Math.ceil(h / step);
  const data = Buffer.alloc(ow * oh * 3);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      const s = ((y + oy * step) * full.width + (x + ox * step)) * 3;
      full.data.copy(data, (oy * ow + ox) * 3, s, s + 3);
    }
  }
  return { width: ow, height: oh, channels: 3, data };
}

describe('IIIF, Deep Zoom and CATMAID routes', () => {
  let system: TestSystem;
  let defaultId: string;
  let pngId: string;
  let full: Raw;
  const defaultSpec = {
    v: 1,
    channels: [
      { index: 0, color: '#0080ff', window: [0, 0] as [number, number] },
      { index: 1, color: '#00ff00', window: [0, 0] as [number, number] },
      { index: 2, color: '#ff0000', window: [0, 0] as [number, number] },
    ],
    composite: 'add',
    format: 'jpeg',
    quality: 85,
  };
  const api = (path: string) => `${system.apiUrl}${path}`;
  const renders = () => system.workerCounter('tilefarm_renders_total');

  beforeAll(async () => {
    system = await TestSystem.start({ workers: 1, gateways: 1, datasets: [DATASET], env: { REGION_MAX_SIDE: '2048' } });
    const ds = (await (await fetch(api(`/v1/datasets/${DATASET.id}`))).json()) as { channels: Array<{ color: string; window: [number, number] }> };
    ds.channels.forEach((c, i) => {
      defaultSpec.channels[i]!.color = c.color;
      defaultSpec.channels[i]!.window = c.window;
    });
    const post = async (spec: unknown) => ((await (await fetch(api('/v1/specs'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec) })).json()) as { id: string }).id;
    defaultId = await post(defaultSpec);
    pngId = await post({ ...defaultSpec, format: 'png' });
    // The reference: full resolution of z=0, stitched from /v1/tiles level 0 (lossless).
    const cols = Math.ceil(DATASET.width / TS);
    const rows = Math.ceil(DATASET.height / TS);
    const data = Buffer.alloc(DATASET.width * DATASET.height * 3);
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        const t = await decode((await get(api(`/v1/tiles/${DATASET.id}/${pngId}/0/0/0/${x}/${y}.png`))).body);
        for (let r = 0; r < t.height; r++) t.data.copy(data, ((y * TS + r) * DATASET.width + x * TS) * 3, r * t.width * 3, (r + 1) * t.width * 3);
      }
    }
    full = { width: DATASET.width, height: DATASET.height, channels: 3, data };
  }, 300_000);
  afterAll(async () => {
    if (process.env.SHOW_LOGS) for (const p of system.processes) console.log(p.name, p.output.join('').slice(-6000));
    await system?.stop();
  });

  it('IIIF info.json: the fields clients read, and an id they can build URLs from', async () => {
    const res = await get(api(`/iiif/3/${DATASET.id}/info.json`));
    expect(res.status).toBe(200);
    const info = JSON.parse(res.body.toString()) as Record<string, unknown>;
    expect(info).toMatchObject({
      '@context': 'http://iiif.io/api/image/3/context.json',
      id: api(`/iiif/3/${DATASET.id}`),
      type: 'ImageService3',
      protocol: 'http://iiif.io/api/image',
      profile: 'level1',
      width: 1100,
      height: 700,
      tiles: [{ width: 256, height: 256, scaleFactors: [1, 2, 4, 8] }],
      maxWidth: 2048,
    });
    const redirect = await fetch(api(`/iiif/3/${DATASET.id}~z2`), { redirect: 'manual' });
    expect([redirect.status, redirect.headers.get('location')]).toEqual([303, api(`/iiif/3/${DATASET.id}~z2/info.json`)]);
    const unknown = await get(api('/iiif/3/no-such/info.json'));
    expect([unknown.status, JSON.parse(unknown.body.toString()).error.code]).toEqual([404, 'dataset_not_found']);
    const rotated = await get(api(`/iiif/3/${DATASET.id}/full/max/90/default.jpg`));
    expect([rotated.status, JSON.parse(rotated.body.toString()).error.message]).toEqual([501, 'rotation: only 0 is supported']);
  });

  it('IIIF grid requests are /v1/tiles tiles (one content key), at every level OpenSeadragon asks for', async () => {
    const cases: [string, string, string][] = [
      ['0,0,256,256/256,256', '0/0/0/0/0', 'full resolution'],
      ['1024,512,76,188/76,188', '0/0/0/4/2', 'edge tile'],
      ['512,0,512,512/256,256', '1/0/0/1/0', 'level 1'],
      ['1024,512,76,188/38,94', '1/0/0/2/1', 'level 1 edge'],
      ['full/138,88', '3/0/0/0/0', 'coarsest level as OpenSeadragon asks for it'],
    ];
    for (const [iiif, v1, what] of cases) {
      const a = await get(api(`/iiif/3/${DATASET.id}/${iiif}/0/default.jpg`));
      const b = await get(api(`/v1/tiles/${DATASET.id}/${defaultId}/${v1}.jpeg`));
      expect([what, a.status, a.type]).toEqual([what, 200, 'image/jpeg']);
      expect([what, a.key]).toEqual([what, b.key]);
    }
  });

  it('IIIF regions off the grid are rendered by a worker: equal to the area cut from full resolution (±1), stored once', async () => {
    const before = await renders();
    const a = await get(api(`/iiif/3/${DATASET.id}/300,200,400,300/max/0/default.png`));
    expect([a.status, a.type]).toEqual([200, 'image/png']);
    expect(a.key).toMatch(/\/s[0-9a-f]{16}-r-z0-t0-l0-300_200_400_300-400x300\.png$/);
    expect(maxDiff(await decode(a.body), cut(full, 300, 200, 400, 300))).toBeLessThanOrEqual(1);
    expect(await renders()).toBe(before + 1);
    const again = await get(api(`/iiif/3/${DATASET.id}/300,200,400,300/max/0/default.png`));
    expect(again.key).toBe(a.key);
    expect(await renders()).toBe(before + 1); // a repeat is free
    // Scaled: the whole image at a quarter, read from level 2 (every 4th pixel, as the pyramid holds).
    const quarter = await get(api(`/iiif/3/${DATASET.id}/full/275,175/0/default.png`));
    expect(maxDiff(await decode(quarter.body), cut(full, 0, 0, 1100, 700, 4))).toBeLessThanOrEqual(1);
    // pct: and square land on the same pixels.
    const pct = await decode((await get(api(`/iiif/3/${DATASET.id}/pct:50,50,10,10/max/0/default.png`))).body);
    expect(maxDiff(pct, cut(full, 550, 350, 110, 70))).toBeLessThanOrEqual(1);
    const square = await decode((await get(api(`/iiif/3/${DATASET.id}/square/350,/0/default.png`))).body);
    expect(maxDiff(square, cut(full, 200, 0, 700, 700, 2))).toBeLessThanOrEqual(1);
    // gray: one value per pixel repeated in R, G and B.
    const gray = await decode((await get(api(`/iiif/3/${DATASET.id}/0,0,256,256/256,256/0/gray.png`))).body);
    let colourful = 0;
    for (let i = 0; i < gray.data.length; i += gray.channels) if (gray.data[i] !== gray.data[i + 1] || gray.data[i] !== gray.data[i + 2]) colourful++;
    expect(colourful).toBe(0);
    // The whole plane at full resolution is one region render (1100 <= REGION_MAX_SIDE 2048; larger asks are 400, see the unit tests).
    const whole = await get(api(`/iiif/3/${DATASET.id}/full/max/0/default.png`));
    expect(maxDiff(await decode(whole.body), full)).toBeLessThanOrEqual(1);
  });

  it('Deep Zoom: descriptor, stored levels shared with /v1/tiles, coarser levels downsampled by a worker', async () => {
    const xml = await get(api(`/dzi/${DATASET.id}.dzi`));
    expect([xml.status, xml.type]).toEqual([200, 'application/xml; charset=utf-8']);
    expect(xml.body.toString()).toContain('TileSize="256" Overlap="0" Format="jpeg"><Size Width="1100" Height="700"/>');
    // ceil(log2(1100)) = 11 is full resolution.
    const top = await get(api(`/dzi/${DATASET.id}_files/11/4_2.jpeg`));
    expect(top.key).toBe((await get(api(`/v1/tiles/${DATASET.id}/${defaultId}/0/0/0/4/2.jpeg`))).key);
    const coarse = await get(api(`/dzi/${DATASET.id}~${pngId}_files/6/0_0.png`)); // 1100/32 → 35x22, coarser than level 3
    expect(coarse.status).toBe(200);
    expect(maxDiff(await decode(coarse.body), cut(full, 0, 0, 1100, 700, 32))).toBeLessThanOrEqual(1);
    const one = await decode((await get(api(`/dzi/${DATASET.id}_files/0/0_0.jpeg`))).body);
    expect([one.width, one.height]).toEqual([1, 1]);
    expect((await get(api(`/dzi/${DATASET.id}_files/12/0_0.jpeg`))).status).toBe(400);
  });

  it('CATMAID: types 1, 4, 5 are one tile; edge tiles padded with black; overview; type 9 equals the POSTed spec', async () => {
    const base = api(`/catmaid/${DATASET.id}/${pngId}/`);
    const t1 = await get(`${base}0/1_2_0.png`);
    const t4 = await get(`${base}0/0/1_2.png`);
    const t5 = await get(`${base}0/0/1/2.png`);
    expect([t1.status, t1.key]).toEqual([200, (await get(api(`/v1/tiles/${DATASET.id}/${pngId}/0/0/0/2/1.png`))).key]);
    expect([t4.key, t5.key]).toEqual([t1.key, t1.key]);
    // Edge tile at zoom 0: 76x188 of picture, the rest of 256x256 black.
    const edge = await decode((await get(`${base}0/2_4_0.png`)).body);
    expect([edge.width, edge.height]).toEqual([256, 256]);
    expect(maxDiff(cut(edge, 0, 0, 76, 188), cut(full, 1024, 512, 76, 188))).toBeLessThanOrEqual(1);
    let outside = 0;
    for (let y = 0; y < 256; y++) for (let x = 0; x < 256; x++) if (x >= 76 || y >= 188) outside += edge.data[(y * 256 + x) * 3]! + edge.data[(y * 256 + x) * 3 + 1]! + edge.data[(y * 256 + x) * 3 + 2]!;
    expect(outside).toBe(0);
    // Cropped everywhere else.
    expect((await decode((await get(api(`/v1/tiles/${DATASET.id}/${pngId}/0/0/0/4/2.png`))).body)).width).toBe(76);
    const small = await decode((await get(`${base}0/small.png`)).body);
    expect([small.width, small.height]).toEqual([138, 88]);
    expect((await get(`${base}small/0.png`)).key).toBe((await get(`${base}0/small.png`)).key);
    // Type 9: two channels' colours and windows in the query; the third keeps its defaults.
    const type9 = await get(api(`/catmaid/${DATASET.id}/1/1_1_0.png?color=red,blue&min=150,120&max=1200,900&gamma=1,2&quality=90`));
    const posted = { ...defaultSpec, format: 'png', quality: 90, channels: [{ index: 0, color: '#ff0000', window: [150, 1200] }, { index: 1, color: '#0000ff', window: [120, 900], gamma: 2 }, defaultSpec.channels[2]] };
    const id = ((await (await fetch(api('/v1/specs'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(posted) })).json()) as { id: string }).id;
    const ref = await get(api(`/v1/tiles/${DATASET.id}/${id}/0/1/0/1/1.png`));
    expect(type9.key).toBe(ref.key);
    expect((await decode(type9.body)).data.equals((await decode(ref.body)).data)).toBe(true);
    // The stack mirror values for CATMAID's admin.
    const info = (await (await fetch(api(`/v1/datasets/${DATASET.id}/catmaid`))).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ dimension: { x: 1100, y: 700, z: 3 }, tile_width: 256, zoom_levels: 4, mirror: { image_base: api(`/catmaid/${DATASET.id}/`), tile_source_type: 1, file_extension: 'jpg' } });
  });

  it('OMERO.web: region= crops rendered by a worker equal the full-resolution cut; thumbnails; imgData; histogram_json', async () => {
    const c = '1|' + defaultSpec.channels[0]!.window.join(':') + '$' + defaultSpec.channels[0]!.color.slice(1) + ',2|' + defaultSpec.channels[1]!.window.join(':') + '$' + defaultSpec.channels[1]!.color.slice(1) + ',3|' + defaultSpec.channels[2]!.window.join(':') + '$' + defaultSpec.channels[2]!.color.slice(1);
    const region = await get(api(`/webgateway/render_image_region/${DATASET.id}/0/0/?region=123,45,321,234&c=${encodeURIComponent(c)}&format=png`));
    expect([region.status, region.type]).toEqual([200, 'image/png']);
    expect(region.key).toMatch(/\/s[0-9a-f]{16}-r-z0-t0-l0-123_45_321_234-321x234\.png$/);
    expect(maxDiff(await decode(region.body), cut(full, 123, 45, 321, 234))).toBeLessThanOrEqual(1);
    const thumb = await decode((await get(api(`/webgateway/render_thumbnail/${DATASET.id}/`))).body);
    expect([thumb.width, thumb.height]).toEqual([96, 61]);
    const birds = await decode((await get(api(`/webgateway/render_birds_eye_view/${DATASET.id}/200/`))).body);
    expect([birds.width, birds.height]).toEqual([200, 127]);
    const img = (await (await fetch(api(`/webgateway/imgData/${DATASET.id}/`))).json()) as Record<string, any>;
    expect(img).toMatchObject({ tiles: true, tile_size: { width: 256, height: 256 }, levels: 4, size: { width: 1100, height: 700, z: 3, t: 1, c: 3 }, meta: { pixelsType: 'uint16' } });
    expect(img.channels).toHaveLength(3);
    expect(img.channels[0]).toMatchObject({ label: 'DAPI', color: defaultSpec.channels[0]!.color.slice(1).toUpperCase(), window: { start: defaultSpec.channels[0]!.window[0], end: defaultSpec.channels[0]!.window[1] } });
    expect(img.channels[0].window.max).toBeGreaterThan(img.channels[0].window.min);
    const stats = (await (await fetch(api(`/v1/datasets/${DATASET.id}/stats`))).json()) as { planes: Array<{ c: number; z: number; t: number; histogram: { counts: number[] } }> };
    const plane = stats.planes.find((p) => p.c === 1 && p.z === 2 && p.t === 0)!;
    const hist = (await (await fetch(api(`/webgateway/histogram_json/${DATASET.id}/channel/1/?theZ=2&theT=0`))).json()) as { data: number[] };
    expect(hist.data).toEqual(plane.histogram.counts);
    expect(hist.data.reduce((a, b) => a + b, 0)).toBe(1100 * 700);
    for (const [path, status] of [
      [`/webgateway/render_image_region/${DATASET.id}/0/0/?region=0,0,0,5`, 400],
      [`/webgateway/render_image_region/${DATASET.id}/0/0/?region=5000,0,10,10`, 400],
      [`/webgateway/render_thumbnail/${DATASET.id}/99999/`, 400],
      [`/webgateway/histogram_json/${DATASET.id}/channel/7/`, 400],
      [`/webgateway/imgData/nope/`, 404],
    ] as const) {
      expect([path, (await get(api(path))).status]).toEqual([path, status]);
    }
  });

  it('CORS: image routes answer preflights and carry Access-Control-Allow-Origin (open system: *)', async () => {
    const pre = await fetch(api(`/catmaid/${DATASET.id}/0/0_0_0.jpg`), { method: 'OPTIONS', headers: { origin: 'http://catmaid.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    for (const p of [`/iiif/3/${DATASET.id}/info.json`, `/dzi/${DATASET.id}.dzi`, `/catmaid/${DATASET.id}/0/0_0_0.jpg`, `/v1/tiles/${DATASET.id}/${defaultId}/0/0/0/0/0.jpeg`]) {
      const res = await fetch(api(p), { headers: { origin: 'http://catmaid.example' } });
      expect([p, res.status, res.headers.get('access-control-allow-origin')]).toEqual([p, 200, '*']);
    }
  });
});

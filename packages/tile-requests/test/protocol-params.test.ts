import { DatasetManifest, RenderSpec, TilefarmError, type ErrorCode } from '@tilefarm/contracts';
import { parseIiifIdentifier, parseIiifImageRequest, iiifInfo, graySpec, formatIiifIdentifier } from '../src/iiif-params';
import { dziDescriptor, dziMaxLevel, parseDziTile } from '../src/dzi-params';
import { catmaidOverviewArea, catmaidQueryToSpec, catmaidTileArea, parseCatmaidPath } from '../src/catmaid-params';
import { alignedTile, placeRequest, MAX_REGION_SOURCE_TILES } from '../src/region-placement';

// 1000x600 at 256: levels 0..2 (1000x600, 500x300, 250x150); level 2 fits one tile.
const manifest = DatasetManifest.parse({
  v: 1,
  id: 'cells',
  version: 1,
  width: 1000,
  height: 600,
  sizeZ: 4,
  sizeT: 2,
  tileSize: 256,
  levels: 3,
  dtype: 'uint16',
  channels: [
    { label: 'DAPI', color: '#0000ff', window: [100, 4000] },
    { label: 'GFP', color: '#00ff00', window: [100, 5000] },
  ],
  sourceEncoding: 'raw-deflate-v1',
  createdAt: new Date(0).toISOString(),
});
const limits = { maxWidth: 4096, maxHeight: 4096 };

function errorOf(fn: () => unknown): TilefarmError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TilefarmError) return e;
    throw e;
  }
  throw new Error('expected a TilefarmError');
}

describe('IIIF image request grammar (valid forms → region and pixel size)', () => {
  const table: [string, string, string, string, [number, number, number, number], [number, number]][] = [
    ['full', 'max', '0', 'default.jpg', [0, 0, 1000, 600], [1000, 600]],
    ['square', 'max', '0', 'default.jpg', [200, 0, 600, 600], [600, 600]],
    ['0,0,256,256', '256,256', '0', 'default.jpg', [0, 0, 256, 256], [256, 256]],
    ['768,512,512,512', '116,44', '0', 'default.png', [768, 512, 232, 88], [116, 44]], // cropped to the image
    ['full', '500,', '0', 'color.webp', [0, 0, 1000, 600], [500, 300]],
    ['full', ',150', '0', 'gray.jpg', [0, 0, 1000, 600], [250, 150]],
    ['full', '!200,200', '0', 'default.jpg', [0, 0, 1000, 600], [200, 120]],
    ['full', '!5000,5000', '0', 'default.jpg', [0, 0, 1000, 600], [1000, 600]], // never upscaled
    ['full', 'pct:50', '0', 'default.jpg', [0, 0, 1000, 600], [500, 300]],
    ['pct:10,10,50,50', 'max', '0', 'default.jpg', [100, 60, 500, 300], [500, 300]],
    ['pct:0,0,100,100', '100,60', '360', 'default.jpg', [0, 0, 1000, 600], [100, 60]],
    ['10,20,30,40', '15,20', '0', 'default.png', [10, 20, 30, 40], [15, 20]],
  ];
  it.each(table)('%s/%s/%s/%s', (region, size, rotation, qualityFormat, rect, out) => {
    const r = parseIiifImageRequest({ region, size, rotation, qualityFormat }, manifest, limits);
    expect([r.region.x, r.region.y, r.region.width, r.region.height]).toEqual(rect);
    expect([r.width, r.height]).toEqual(out);
  });

  it('max respects maxWidth/maxHeight', () => {
    const r = parseIiifImageRequest({ region: 'full', size: 'max', rotation: '0', qualityFormat: 'default.jpg' }, manifest, { maxWidth: 500, maxHeight: 500 });
    expect([r.width, r.height]).toEqual([500, 300]);
  });

  it('formats and qualities', () => {
    const r = parseIiifImageRequest({ region: 'full', size: 'max', rotation: '0', qualityFormat: 'gray.png' }, manifest, limits);
    expect([r.quality, r.format]).toEqual(['gray', 'png']);
  });
});

describe('IIIF image request grammar (invalid forms → the right 4xx/501, naming the parameter)', () => {
  const table: [string, string, string, string, ErrorCode, RegExp][] = [
    ['0,0,0,10', 'max', '0', 'default.jpg', 'bad_request', /^region: .*zero/],
    ['1000,0,10,10', 'max', '0', 'default.jpg', 'bad_request', /^region: .*outside/],
    ['a,b,c,d', 'max', '0', 'default.jpg', 'bad_request', /^region:/],
    ['1,2,3', 'max', '0', 'default.jpg', 'bad_request', /^region:/],
    ['pct:x', 'max', '0', 'default.jpg', 'bad_request', /^region:/],
    ['full', 'full', '0', 'default.jpg', 'bad_request', /^size: .*IIIF 2/],
    ['full', '2000,', '0', 'default.jpg', 'bad_request', /^size: .*larger than/],
    ['full', '0,', '0', 'default.jpg', 'bad_request', /^size: .*empty/],
    ['full', 'pct:150', '0', 'default.jpg', 'bad_request', /^size:/],
    ['full', '^max', '0', 'default.jpg', 'not_implemented', /^size: upscaling/],
    ['full', '^2000,', '0', 'default.jpg', 'not_implemented', /^size: upscaling/],
    ['full', 'big', '0', 'default.jpg', 'bad_request', /^size:/],
    ['full', 'max', '90', 'default.jpg', 'not_implemented', /^rotation: only 0/],
    ['full', 'max', '!0', 'default.jpg', 'not_implemented', /^rotation: mirroring/],
    ['full', 'max', '-5', 'default.jpg', 'bad_request', /^rotation:/],
    ['full', 'max', '400', 'default.jpg', 'bad_request', /^rotation:/],
    ['full', 'max', '0', 'bitonal.jpg', 'not_implemented', /^quality: bitonal/],
    ['full', 'max', '0', 'native.jpg', 'bad_request', /^quality:/],
    ['full', 'max', '0', 'default', 'bad_request', /^quality:/],
    ['full', 'max', '0', 'default.tif', 'not_implemented', /^format: tif/],
    ['full', 'max', '0', 'default.bmp', 'bad_request', /^format:/],
  ];
  it.each(table)('%s/%s/%s/%s → %s', (region, size, rotation, qualityFormat, code, message) => {
    const e = errorOf(() => parseIiifImageRequest({ region, size, rotation, qualityFormat }, manifest, limits));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
  });

  it('sizes over the server maximum are 400', () => {
    const e = errorOf(() => parseIiifImageRequest({ region: 'full', size: '900,', rotation: '0', qualityFormat: 'default.jpg' }, manifest, { maxWidth: 800, maxHeight: 800 }));
    expect([e.code, e.status]).toEqual(['bad_request', 400]);
  });
});

describe('IIIF identifiers and info.json', () => {
  it.each([
    ['cells', { dataset: 'cells', z: 0, t: 0 }],
    ['cells~z3', { dataset: 'cells', z: 3, t: 0 }],
    ['cells~s0123456789abcdef~z2~t1', { dataset: 'cells', specId: 's0123456789abcdef', z: 2, t: 1 }],
    ['cells~t1~s0123456789abcdef', { dataset: 'cells', specId: 's0123456789abcdef', z: 0, t: 1 }],
  ])('%s', (raw, expected) => {
    expect(parseIiifIdentifier(raw)).toEqual(expected);
    expect(parseIiifIdentifier(formatIiifIdentifier(parseIiifIdentifier(raw)))).toEqual(expected);
  });
  it.each([
    ['Cells', 'dataset_not_found'],
    ['cells~z', 'bad_request'],
    ['cells~z1~z2', 'bad_request'],
    ['cells~q1', 'bad_request'],
    ['cells~s01', 'bad_request'],
  ])('%s → %s', (raw, code) => {
    expect(errorOf(() => parseIiifIdentifier(raw)).code).toBe(code);
  });

  it('info.json has the fields clients read, with one scale factor per stored level', () => {
    const info = iiifInfo(manifest, 'http://h/iiif/3/cells', limits);
    expect(info).toMatchObject({
      '@context': 'http://iiif.io/api/image/3/context.json',
      id: 'http://h/iiif/3/cells',
      type: 'ImageService3',
      protocol: 'http://iiif.io/api/image',
      profile: 'level1',
      width: 1000,
      height: 600,
      tiles: [{ width: 256, height: 256, scaleFactors: [1, 2, 4] }],
      sizes: [
        { width: 250, height: 150 },
        { width: 500, height: 300 },
        { width: 1000, height: 600 },
      ],
      maxWidth: 4096,
      extraFormats: ['png', 'webp'],
    });
  });

  it('gray paints every channel white', () => {
    const gray = RenderSpec.parse(graySpec({ channels: [{ index: 0, color: '#ff0000' }, { index: 1, lut: 'fire' }] }));
    expect(gray.channels.map((c) => [c.color, c.lut])).toEqual([
      ['#ffffff', undefined],
      ['#ffffff', undefined],
    ]);
  });
});

describe('placement: grid tiles when the request is one, region renders otherwise', () => {
  const m = manifest;
  it.each([
    // What OpenSeadragon and OpenLayers ask for at each level of the info.json above.
    [{ x: 0, y: 0, width: 256, height: 256 }, { width: 256, height: 256 }, { level: 0, x: 0, y: 0 }],
    [{ x: 768, y: 512, width: 232, height: 88 }, { width: 232, height: 88 }, { level: 0, x: 3, y: 2 }],
    [{ x: 512, y: 512, width: 488, height: 88 }, { width: 244, height: 44 }, { level: 1, x: 1, y: 1 }],
    [{ x: 0, y: 0, width: 1000, height: 600 }, { width: 250, height: 150 }, { level: 2, x: 0, y: 0 }],
  ])('%j at %j → %j', (rect, out, tile) => {
    expect(alignedTile(m, rect, out)).toEqual(tile);
    expect(placeRequest(m, rect, out, { maxSide: 4096 })).toEqual(tile);
  });

  it('a non-aligned region is a region render from the coarsest level with a pixel per output pixel', () => {
    expect(placeRequest(m, { x: 10, y: 20, width: 300, height: 200 }, { width: 300, height: 200 }, { maxSide: 4096 }).region).toEqual({ x: 10, y: 20, width: 300, height: 200, level: 0, outWidth: 300, outHeight: 200 });
    expect(placeRequest(m, { x: 0, y: 0, width: 1000, height: 600 }, { width: 200, height: 120 }, { maxSide: 4096 }).region?.level).toBe(2);
    expect(placeRequest(m, { x: 0, y: 0, width: 1000, height: 600 }, { width: 400, height: 240 }, { maxSide: 4096 }).region?.level).toBe(1);
  });

  it('bounds: output side, upscaling, area outside the image, source tiles read', () => {
    expect(errorOf(() => placeRequest(m, { x: 0, y: 0, width: 1000, height: 600 }, { width: 1000, height: 600 }, { maxSide: 512 })).message).toMatch(/maximum of 512x512/);
    expect(errorOf(() => placeRequest(m, { x: 0, y: 0, width: 10, height: 10 }, { width: 20, height: 20 }, { maxSide: 4096 })).message).toMatch(/no upscaling/);
    expect(errorOf(() => placeRequest(m, { x: 900, y: 0, width: 200, height: 10 }, { width: 20, height: 1 }, { maxSide: 4096 })).code).toBe('out_of_range');
    const wide = { width: 256 * 2000, height: 256 * 2000, tileSize: 256 as const, levels: 1 };
    expect(errorOf(() => placeRequest(wide, { x: 0, y: 0, width: 256 * 2000, height: 256 * 2000 }, { width: 2000, height: 2000 }, { maxSide: 4096 })).message).toMatch(new RegExp(`more than ${MAX_REGION_SOURCE_TILES}`));
  });

  it('pad turns an edge tile into a padded region render; interior tiles stay grid tiles', () => {
    const edge = catmaidTileArea(m, 2, 3, 0);
    expect(edge).toEqual({ rect: { x: 768, y: 512, width: 232, height: 88 }, out: { width: 232, height: 88 }, pad: { width: 256, height: 256 } });
    expect(placeRequest(m, edge.rect, edge.out, { maxSide: 4096 }, 'zoom 0', edge.pad).region).toMatchObject({ outWidth: 232, outHeight: 88, padWidth: 256, padHeight: 256 });
    const inner = catmaidTileArea(m, 0, 1, 0);
    expect(placeRequest(m, inner.rect, inner.out, { maxSide: 4096 }, 'zoom 0', inner.pad)).toEqual({ level: 0, x: 1, y: 0 });
  });
});

describe('Deep Zoom', () => {
  it('descriptor and level mapping (level 10 = full resolution for 1000 px)', () => {
    expect(dziMaxLevel(manifest)).toBe(10);
    expect(dziDescriptor(manifest, 'jpeg')).toContain('<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" TileSize="256" Overlap="0" Format="jpeg"><Size Width="1000" Height="600"/></Image>');
    expect(parseDziTile(manifest, '10', '3_2.jpeg')).toMatchObject({ rect: { x: 768, y: 512, width: 232, height: 88 }, out: { width: 232, height: 88 }, format: 'jpeg' });
    expect(parseDziTile(manifest, '9', '1_0.png')).toMatchObject({ rect: { x: 512, y: 0, width: 488, height: 512 }, out: { width: 244, height: 256 } });
    // Coarser than the stored pyramid (level 2 = 250x150): level 7 is 125x75, level 0 is 1x1.
    expect(parseDziTile(manifest, '7', '0_0.jpg')).toMatchObject({ rect: { x: 0, y: 0, width: 1000, height: 600 }, out: { width: 125, height: 75 } });
    expect(parseDziTile(manifest, '0', '0_0.jpg').out).toEqual({ width: 1, height: 1 });
    const coarse = parseDziTile(manifest, '7', '0_0.jpg');
    expect(placeRequest(manifest, coarse.rect, coarse.out, { maxSide: 4096 }).region).toMatchObject({ level: 2, outWidth: 125, outHeight: 75 });
  });
  it.each([
    ['11', '0_0.jpg', 'invalid_tile'],
    ['x', '0_0.jpg', 'invalid_tile'],
    ['10', '4_0.jpg', 'out_of_range'],
    ['10', '0_0.gif', 'unknown_format'],
    ['10', '0-0.jpg', 'invalid_tile'],
  ])('level %s tile %s → %s', (level, tile, code) => {
    expect(errorOf(() => parseDziTile(manifest, level, tile)).code).toBe(code);
  });
});

describe('CATMAID tile paths (types 1, 4, 5, 9 as tile-source.js builds them)', () => {
  it.each([
    ['3/1_2_0.jpg', { kind: 'tile', z: 3, t: 0, row: 1, col: 2, zoom: 0, format: 'jpeg' }], // type 1 and 9
    ['1/3/1_2_1.png', { kind: 'tile', z: 3, t: 1, row: 1, col: 2, zoom: 1, format: 'png' }], // 4-D: t/z/
    ['3/1/1_2.jpg', { kind: 'tile', z: 3, t: 0, row: 1, col: 2, zoom: 1, format: 'jpeg' }], // type 4
    ['1/3/2/1_0.jpg', { kind: 'tile', z: 3, t: 1, row: 1, col: 0, zoom: 2, format: 'jpeg' }],
    ['2/3/1/0.jpg', { kind: 'tile', z: 3, t: 0, row: 1, col: 0, zoom: 2, format: 'jpeg' }], // type 5
    ['2/1/3/1/0.webp', { kind: 'tile', z: 3, t: 1, row: 1, col: 0, zoom: 2, format: 'webp' }],
    ['3/small.jpg', { kind: 'overview', z: 3, t: 0, format: 'jpeg' }],
    ['small/3.jpg', { kind: 'overview', z: 3, t: 0, format: 'jpeg' }],
  ])('%s', (path, expected) => {
    expect(parseCatmaidPath(path)).toEqual(expected);
  });
  it.each([
    ['3/1_2_0', 'invalid_tile'],
    ['3/1_2_0.gif', 'unknown_format'],
    ['x/1_2_0.jpg', 'invalid_tile'],
    ['1/2/3/4/5/6/7.jpg', 'invalid_tile'],
    ['3/1_2_3_4.jpg', 'invalid_tile'],
    ['small/x.jpg', 'invalid_tile'],
  ])('%s → %s', (path, code) => {
    expect(errorOf(() => parseCatmaidPath(path)).code).toBe(code);
  });

  it('overview: the first 2x step that fits one tile', () => {
    expect(catmaidOverviewArea(manifest).out).toEqual({ width: 250, height: 150 });
  });

  it('type 9 query edits the default rendering per channel; shorter lists keep the rest', () => {
    const spec = RenderSpec.parse(catmaidQueryToSpec({ color: 'red', min: '200,300', max: '3000', gamma: ',2', quality: '90' }, manifest));
    expect(spec.channels.map((c) => [c.index, c.color, c.window, c.gamma])).toEqual([
      [0, '#ff0000', [200, 3000], 1],
      [1, '#00ff00', [300, 5000], 2],
    ]);
    expect(spec.quality).toBe(90);
    expect(RenderSpec.parse(catmaidQueryToSpec({ color: '#00FFFF,ff00ff' }, manifest)).channels.map((c) => c.color)).toEqual(['#00ffff', '#ff00ff']);
  });
  it.each([
    [{ color: 'red,green,blue' }, /^color: 3 values/],
    [{ color: 'purple' }, /^color: value 1/],
    [{ min: 'x' }, /^min: value 1/],
    [{ min: '5000', max: '10' }, /min 5000 exceeds its max 10/],
    [{ gamma: '0' }, /^gamma:/],
    [{ quality: '0' }, /^quality:/],
    [{ color: ['red', 'blue'] }, /^color: give it once/],
  ])('%j → invalid_spec', (query, message) => {
    const e = errorOf(() => catmaidQueryToSpec(query, manifest));
    expect(e.code).toBe('invalid_spec');
    expect(e.message).toMatch(message);
  });
});

import { DatasetManifest, RenderSpec, TilefarmError } from '@tilefarm/contracts';
import { omeroFormat, omeroQueryToSpec, omeroThumbnailSize, parseOmeroRegion, parseOmeroTile, rebinHistogram, singleTileLevel } from '../src/omero-params';

const manifest = DatasetManifest.parse({
  v: 1,
  id: 'omero',
  version: 1,
  width: 1000,
  height: 600,
  sizeZ: 12,
  sizeT: 1,
  tileSize: 256,
  levels: 4,
  dtype: 'uint16',
  channels: [
    { label: 'DAPI', color: '#0000ff', window: [0, 4000] },
    { label: 'GFP', color: '#00ff00', window: [0, 5000] },
    { label: 'RFP', color: '#ff0000', window: [0, 6000] },
  ],
  sourceEncoding: 'raw-deflate-v1',
  createdAt: new Date(0).toISOString(),
});

/** The mapped spec, parsed the way the SpecRegistry will (defaults filled, must validate). */
function spec(query: Record<string, unknown>): RenderSpec {
  return RenderSpec.parse(omeroQueryToSpec(query, manifest));
}

function errorOf(fn: () => unknown): TilefarmError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TilefarmError) return e;
    throw e;
  }
  throw new Error('expected a TilefarmError');
}

describe('omeroQueryToSpec', () => {
  it("maps OMERO's example c= (1-based, inactive, windows, colours)", () => {
    const s = spec({ c: '1|100:505$0000FF,-2|463:2409$00FF00' });
    expect(s.channels).toEqual([{ index: 0, window: [100, 505], color: '#0000ff', gamma: 1, invert: false, active: true }]);
    expect(s.format).toBe('jpeg');
    expect(s.projection).toBeUndefined();
  });

  it('keeps the order of c, and omits windows/colours that are not given (dataset defaults apply)', () => {
    const s = spec({ c: '3,1|0.5:1e3' });
    expect(s.channels.map((c) => [c.index, c.window, c.color])).toEqual([
      [2, undefined, undefined],
      [0, [0.5, 1000], undefined],
    ]);
  });

  it('maps $name.lut to our LUTs and refuses ones we lack', () => {
    expect(spec({ c: '1$fire.lut,2$mpl-viridis.lut,3$grays.lut' }).channels.map((c) => c.lut)).toEqual(['fire', 'viridis', 'gray']);
    const e = errorOf(() => spec({ c: '1$16_colors.lut' }));
    expect(e.code).toBe('invalid_spec');
    expect(e.message).toMatch(/^c: entry 1 .*16_colors\.lut.* not available/);
  });

  it('without c shows every dataset channel with its defaults', () => {
    expect(spec({}).channels.map((c) => c.index)).toEqual([0, 1, 2]);
  });

  it('m=g shows only the first active channel, in gray', () => {
    const s = spec({ c: '-1|0:10$FF0000,2|5:50$FF0000,3', m: 'g' });
    expect(s.channels).toEqual([{ index: 1, window: [5, 50], lut: 'gray', gamma: 1, invert: false, active: true }]);
    expect(spec({ c: '1,2', m: 'c' }).channels).toHaveLength(2);
  });

  it('p= maps to a projection (whole stack, or an inclusive 0-based range clamped to the stack)', () => {
    expect(spec({ p: 'intmax' }).projection).toEqual({ type: 'max', z: [0, 11] });
    expect(spec({ p: 'intmean|2:5' }).projection).toEqual({ type: 'mean', z: [2, 5] });
    expect(spec({ p: 'intsum|3:99' }).projection).toEqual({ type: 'sum', z: [3, 11] });
    expect(spec({ p: 'normal' }).projection).toBeUndefined();
    expect(errorOf(() => spec({ p: 'intmedian' })).message).toMatch(/^p: /);
    expect(errorOf(() => spec({ p: 'intmax|5:2' })).message).toMatch(/^p: range start 5 exceeds end 2/);
    expect(errorOf(() => spec({ p: 'intmax|12:14' })).message).toMatch(/^p: range starts at slice 12/);
  });

  it('maps= inverts the channel at the same position in c (reverse, or the older inverted)', () => {
    const s = spec({ c: '-1,2,3', maps: '[null, {"reverse":{"enabled":true}}, {"inverted":{"enabled":false}}]' });
    expect(s.channels.map((c) => [c.index, c.invert])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(errorOf(() => spec({ maps: '[{"reverse":' })).message).toMatch(/^maps: is not valid JSON/);
    expect(errorOf(() => spec({ maps: '[{"reverse":{"enabled":"yes"}}]' })).message).toMatch(/^maps: entry 1/);
  });

  it('q= is quality x 100; format picks the encoder; tif is a clear unknown_format', () => {
    expect(spec({ q: '0.9' }).quality).toBe(90);
    expect(spec({ q: '0' }).quality).toBe(1);
    expect(spec({}).quality).toBe(85);
    expect(errorOf(() => spec({ q: '1.5' })).message).toMatch(/^q: /);
    expect(spec({ format: 'png' }).format).toBe('png');
    expect(omeroFormat({ format: 'jpg' })).toBe('jpeg');
    const tif = errorOf(() => spec({ format: 'tif' }));
    expect([tif.code, tif.status]).toEqual(['unknown_format', 400]);
    expect(tif.message).toMatch(/^format: tif is not supported/);
    expect(errorOf(() => spec({ format: 'gif' })).code).toBe('unknown_format');
  });

  it('all channels inactive renders black: one inactive channel keeps the spec valid', () => {
    expect(spec({ c: '-1,-2' }).channels).toEqual([{ index: 0, gamma: 1, invert: false, active: false }]);
  });

  it('names the parameter in every error', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ c: '0' }, /^c: entry 1 "0": channel 0 but the dataset has 3 channels \(1\.\.3\)/],
      [{ c: '4' }, /^c: entry 1 "4": channel 4/],
      [{ c: '1|9:3' }, /^c: entry 1 .*window start 9 exceeds end 3/],
      [{ c: '1|a:3' }, /^c: entry 1 .*is not \[-\]index/],
      [{ c: '1$00FF' }, /^c: entry 1 .*colour "00FF"/],
      [{ c: ['1', '2'] }, /^c: give the parameter once/],
      [{ c: Array.from({ length: 65 }, () => '1').join(',') }, /^c: 65 entries; at most 64/],
      [{ m: 'x' }, /^m: "x" is not c/],
      [{ flip: 'h' }, /^flip: /],
    ];
    for (const [query, message] of cases) {
      const e = errorOf(() => spec(query));
      expect(e.code).toBe('invalid_spec');
      expect(e.message).toMatch(message);
    }
  });

  it('ignores parameters it does not know (cache busters)', () => {
    expect(spec({ c: '1', _: '123456', ia: '0' }).channels).toHaveLength(1);
  });
});

describe('parseOmeroTile / singleTileLevel', () => {
  it('tile=level,x,y,w,h: level 0 is full resolution in the URL, as ours; x, y are column and row', () => {
    expect(parseOmeroTile({ tile: '0,3,2,256,256' }, manifest)).toEqual({ level: 0, x: 3, y: 2 });
    expect(parseOmeroTile({ tile: '2,0,1' }, manifest)).toEqual({ level: 2, x: 0, y: 1 });
  });

  it('refuses missing, malformed and other-sized tiles with invalid_tile naming tile', () => {
    for (const query of [{}, { tile: '0,1' }, { tile: '0,1,2,256' }, { tile: '0,-1,2,256,256' }, { tile: ['0,0,0', '0,0,0'] }, { tile: '0,0,0,512,512' }]) {
      const e = errorOf(() => parseOmeroTile(query, manifest));
      expect(e.code).toBe('invalid_tile');
      expect(e.message).toMatch(/^tile: /);
    }
  });

  it('the whole plane is the finest level that fits one tile', () => {
    expect(singleTileLevel(manifest)).toBe(2); // 1000x600 → 500x300 → 250x150
    expect(errorOf(() => singleTileLevel({ ...manifest, levels: 2 })).code).toBe('invalid_tile');
  });
});

describe('OMERO region=, thumbnail size, histogram bins', () => {
  it.each([
    ['0,0,100,50', { x: 0, y: 0, width: 100, height: 50 }],
    ['900,500,500,500', { x: 900, y: 500, width: 100, height: 100 }], // cropped to the 1000x600 image
  ])('region=%s', (region, rect) => {
    expect(parseOmeroRegion({ region }, manifest)).toEqual(rect);
  });
  it.each([
    [{ region: '0,0,0,5' }, 'invalid_tile', /empty/],
    [{ region: '1000,0,5,5' }, 'out_of_range', /starts outside/],
    [{ region: '1,2,3' }, 'invalid_tile', /x,y,w,h/],
    [{ region: ['1,2,3,4', '1,2,3,4'] }, 'invalid_tile', /give it once/],
  ])('%j → %s', (query, code, message) => {
    const e = errorOf(() => parseOmeroRegion(query, manifest));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
  });
  it('thumbnail: longer side = size (default 96), never upscaled, bounded', () => {
    expect(omeroThumbnailSize(undefined, manifest, 4096)).toEqual({ width: 96, height: 58 });
    expect(omeroThumbnailSize('200', manifest, 4096)).toEqual({ width: 200, height: 120 });
    expect(omeroThumbnailSize('5000', { width: 1000, height: 600 }, 8192)).toEqual({ width: 1000, height: 600 });
    expect(errorOf(() => omeroThumbnailSize('5000', manifest, 4096)).message).toMatch(/maximum of 4096/);
    expect(errorOf(() => omeroThumbnailSize('0', manifest, 4096)).code).toBe('invalid_tile');
  });
  it('histogram bins: summed when they divide the stored bins, else as stored', () => {
    expect(rebinHistogram([1, 2, 3, 4], '2')).toEqual([3, 7]);
    expect(rebinHistogram([1, 2, 3, 4], '3')).toEqual([1, 2, 3, 4]);
    expect(rebinHistogram([1, 2, 3, 4], undefined)).toEqual([1, 2, 3, 4]);
    expect(errorOf(() => rebinHistogram([1], 'x')).code).toBe('bad_request');
  });
});

import sharp from 'sharp';
import type { DatasetSummary } from '@tilefarm/contracts';
import { TestSystem } from '../support/system';
import { NUMERIC_DTYPES, numericFixtureValue, zarrFixtures, type NumericDtype } from '../support/zarr-fixtures';

// Issue 13: int16, uint32 and float32 OME-Zarr sources (written by Python's zarr) render with
// windows in raw units. Every pixel of the rendered tiles is checked against the fixture's known
// value put through the documented window arithmetic (packages/render/src/pixel-ops.ts), not
// against anything read through our code; the /zarr/ view hands the raw values back.

const fixtures = zarrFixtures();
const json = { 'content-type': 'application/json' };
/** Windows in the source's own units: negative for int16, past 65535 for uint32, fractional for float32. */
const WINDOWS: Record<NumericDtype, [number, number]> = { int16: [-300, 600], uint32: [1_300_000, 2_000_000], float32: [40.5, 160.25] };

describe('int16, uint32 and float32 OME-Zarr sources render with windows in raw units', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await TestSystem.start({ workers: 1, env: { INGEST_ROOT: fixtures.dir } });
    for (const dtype of NUMERIC_DTYPES) {
      for (const mode of ['link', 'copy'] as const) {
        const status = await system.registerDataset({ id: `${mode}-${dtype}`, source: `numeric-${dtype}.zarr`, mode });
        expect({ dtype, mode, state: status.state, error: status.error }).toMatchObject({ dtype, mode, state: 'completed' });
      }
    }
  }, 240_000);
  afterAll(async () => {
    await system?.stop();
  });

  it.each(NUMERIC_DTYPES)('%s: every pixel of level 0 and 1 tiles = the known value through the window (±1), linked and copied', async (dtype) => {
    const summary = (await (await fetch(`${system.apiUrl}/v1/datasets/link-${dtype}`)).json()) as DatasetSummary;
    expect(summary).toMatchObject({ width: 500, height: 300, sizeZ: 2, sizeC: 2, levels: 2 });
    const [lo, hi] = WINDOWS[dtype];
    const created = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: json, body: JSON.stringify({ channels: [{ index: 1, color: '#ffffff', window: [lo, hi] }], format: 'png' }) });
    expect(created.status).toBeLessThan(300);
    const { id: spec } = (await created.json()) as { id: string };
    let checked = 0;
    const seen = new Set<number>();
    for (const id of [`link-${dtype}`, `copy-${dtype}`]) {
      for (const [level, z, tx, ty] of [[0, 1, 0, 0], [0, 0, 1, 1], [1, 1, 0, 0]] as const) {
        const res = await fetch(`${system.apiUrl}/v1/tiles/${id}/${spec}/${level}/${z}/0/${tx}/${ty}.png`);
        expect({ id, level, status: res.status }).toEqual({ id, level, status: 200 });
        const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
        let worst = 0;
        for (let y = 0; y < info.height; y++) {
          for (let x = 0; x < info.width; x++) {
            const f = 2 ** level;
            const v = numericFixtureValue(dtype, 1, z, (ty * 256 + y) * f, (tx * 256 + x) * f);
            const want = Math.round(Math.min(1, Math.max(0, (v - lo) / (hi - lo))) * 255);
            const got = data[(y * info.width + x) * info.channels]!;
            worst = Math.max(worst, Math.abs(got - want));
            seen.add(got);
            checked++;
          }
        }
        expect({ id, level, z, tx, ty, within1: worst <= 1, worst }).toMatchObject({ id, level, z, tx, ty, within1: true });
      }
    }
    expect(checked).toBeGreaterThan(100_000);
    // The window really cuts through the values: black, white and many greys.
    expect(seen.has(0) && seen.has(255) && seen.size > 100).toBe(true);
  }, 120_000);

  it('auto windows come from the statistics (no omero block), and the /zarr/ view returns the raw values', async () => {
    for (const dtype of NUMERIC_DTYPES) {
      const summary = (await (await fetch(`${system.apiUrl}/v1/datasets/link-${dtype}`)).json()) as DatasetSummary;
      // Channel 1 holds base - 1500 .. (int16), so its window lies inside the channel's value range, not [0, 1].
      const values = [numericFixtureValue(dtype, 1, 0, 0, 0), numericFixtureValue(dtype, 1, 1, 0, 0)];
      const window = summary.channels[1]!.window;
      expect({ dtype, wide: window[1] - window[0] > Math.abs(values[1]! - values[0]!) }).toEqual({ dtype, wide: true });
      expect(window[0]).toBeGreaterThanOrEqual(numericFixtureValue(dtype, 1, 0, 0, 0) - 1);

      const zarray = (await (await fetch(`${system.apiUrl}/zarr/link-${dtype}.zarr/0/.zarray`)).json()) as { dtype: string };
      expect(zarray.dtype).toBe('<f4');
      const chunk = await fetch(`${system.apiUrl}/zarr/link-${dtype}.zarr/0/0/1/1/1/0`);
      expect(chunk.status).toBe(200);
      const bytes = Buffer.from(await chunk.arrayBuffer());
      const samples = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      for (const [y, x] of [[0, 0], [10, 3], [43, 200]] as const) {
        expect({ dtype, y, x, v: samples[y * 256 + x] }).toEqual({ dtype, y, x, v: numericFixtureValue(dtype, 1, 1, 256 + y, x) });
      }
    }
  }, 60_000);
});

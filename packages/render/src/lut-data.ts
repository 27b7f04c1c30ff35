import type { LutName } from '@tilefarm/contracts';

/**
 * Colour lookup tables: 256 RGB entries each (Uint8Array of 768, r,g,b interleaved).
 *
 * - fire and ice: ImageJ's LutLoader anchor tables (32 entries each), interpolated to 256 exactly
 *   as ImageJ does (linear between neighbouring anchors).
 * - viridis, magma, inferno, cividis: generated here by linear RGB interpolation between 10 evenly
 *   spaced published anchor colours (viridisLite's viridis(10)/magma(10)/inferno(10)/cividis(10),
 *   sampled from matplotlib's tables). Within a few levels of the 256-entry originals; the anchors
 *   themselves are exact.
 */

const FIRE_R = [0, 0, 1, 25, 49, 73, 98, 122, 146, 162, 173, 184, 195, 207, 217, 229, 240, 252, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255];
const FIRE_G = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 14, 35, 57, 79, 101, 117, 133, 147, 161, 175, 190, 205, 219, 234, 248, 255, 255, 255, 255];
const FIRE_B = [0, 61, 96, 130, 165, 192, 220, 227, 210, 181, 151, 122, 93, 64, 35, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 35, 98, 160, 223, 255];

const ICE_R = [0, 0, 0, 0, 0, 0, 19, 29, 50, 48, 79, 112, 134, 158, 186, 201, 217, 229, 242, 250, 250, 250, 250, 251, 250, 250, 250, 250, 251, 251, 243, 230];
const ICE_G = [156, 165, 176, 184, 190, 196, 193, 184, 171, 162, 146, 125, 107, 93, 81, 87, 92, 97, 95, 93, 93, 90, 85, 69, 64, 54, 47, 35, 19, 0, 4, 0];
const ICE_B = [140, 147, 158, 166, 170, 176, 209, 220, 234, 225, 236, 246, 250, 251, 250, 250, 245, 230, 230, 222, 202, 180, 163, 142, 123, 114, 106, 94, 84, 64, 26, 27];

const VIRIDIS = ['440154', '482878', '3E4A89', '31688E', '26828E', '1F9E89', '35B779', '6DCD59', 'B4DE2C', 'FDE725'];
const MAGMA = ['000004', '180F3E', '451077', '721F81', '9F2F7F', 'CD4071', 'F1605D', 'FD9567', 'FEC98D', 'FCFDBF'];
const INFERNO = ['000004', '1B0C42', '4B0C6B', '781C6D', 'A52C60', 'CF4446', 'ED6925', 'FB9A06', 'F7D03C', 'FCFFA4'];
const CIVIDIS = ['00204D', '00336F', '39486B', '575C6D', '707173', '8A8779', 'A69D75', 'C4B56C', 'E4CF5B', 'FFEA46'];

/** ImageJ's interpolation of a 32-entry table to 256 entries. */
function imagejInterpolate(r: number[], g: number[], b: number[]): Uint8Array {
  const out = new Uint8Array(768);
  const n = r.length;
  const scale = n / 256;
  for (let i = 0; i < 256; i++) {
    const i1 = Math.floor(i * scale);
    const i2 = Math.min(i1 + 1, n - 1);
    const f = i * scale - i1;
    out[i * 3] = (1 - f) * (r[i1] as number) + f * (r[i2] as number);
    out[i * 3 + 1] = (1 - f) * (g[i1] as number) + f * (g[i2] as number);
    out[i * 3 + 2] = (1 - f) * (b[i1] as number) + f * (b[i2] as number);
  }
  return out;
}

/** Linear interpolation between evenly spaced anchors (anchor k sits at entry k*255/(n-1)). */
function anchorsToTable(hex: string[]): Uint8Array {
  const rgb = hex.map((h) => [0, 2, 4].map((o) => parseInt(h.slice(o, o + 2), 16)));
  const out = new Uint8Array(768);
  const last = rgb.length - 1;
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * last;
    const k = Math.min(Math.floor(t), last - 1);
    const f = t - k;
    const a = rgb[k] as number[];
    const b = rgb[k + 1] as number[];
    for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round((1 - f) * (a[c] as number) + f * (b[c] as number));
  }
  return out;
}

function grayTable(): Uint8Array {
  const out = new Uint8Array(768);
  for (let i = 0; i < 256; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = i;
  return out;
}

export const LUT_TABLES: Readonly<Record<LutName, Uint8Array>> = {
  gray: grayTable(),
  fire: imagejInterpolate(FIRE_R, FIRE_G, FIRE_B),
  viridis: anchorsToTable(VIRIDIS),
  magma: anchorsToTable(MAGMA),
  inferno: anchorsToTable(INFERNO),
  cividis: anchorsToTable(CIVIDIS),
  ice: imagejInterpolate(ICE_R, ICE_G, ICE_B),
};

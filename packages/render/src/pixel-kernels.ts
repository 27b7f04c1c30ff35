import { join } from 'node:path';
import { copyRows, fusedColor1, fusedColor2, fusedColor3, writeRgbTables, type RowSamples } from './pixel-ops';

type Samples = Uint8Array | Uint16Array;
type Rgb = readonly [number, number, number];

/**
 * The composite's hot loops, as the renderer calls them: the fast paths of 1-3 colour channels on
 * integer samples (see pixel-ops.ts for the arithmetic), and the row copy that assembles a tile from
 * Zarr chunks. Two implementations give the same bytes: pixel-ops.ts itself, and the same loops in C
 * (native/pixel-kernels.c), 3-4x faster.
 */
export interface PixelKernels {
  readonly implementation: 'native' | 'javascript';
  fusedColor1(a: Samples, ta: Float32Array, ca: Rgb, out: Uint8Array): void;
  fusedColor2(mode: 'add' | 'max', a: Samples, ta: Float32Array, ca: Rgb, b: Samples, tb: Float32Array, cb: Rgb, out: Uint8Array): void;
  fusedColor3(mode: 'add' | 'max', a: Samples, ta: Float32Array, ca: Rgb, b: Samples, tb: Float32Array, cb: Rgb, c: Samples, tc: Float32Array, cc: Rgb, out: Uint8Array): void;
  writeRgbTables(r: Samples, tr: Uint8Array, g: Samples, tg: Uint8Array, b: Samples, tb: Uint8Array, out: Uint8Array): void;
  copyRows(dst: RowSamples, dstOffset: number, dstStride: number, src: RowSamples, srcOffset: number, srcStride: number, width: number, rows: number): void;
}

export const javascriptPixelKernels: PixelKernels = { implementation: 'javascript', fusedColor1, fusedColor2, fusedColor3, writeRgbTables, copyRows };

/** The addon's own calling convention (native/pixel-kernels.c): `out` first, then src, table, rgb per channel. */
interface PixelKernelsAddon {
  fusedColor(mode: 'add' | 'max', out: Uint8Array, ...channels: (Samples | Float32Array | Rgb)[]): void;
  writeRgbTables(r: Samples, tr: Uint8Array, g: Samples, tg: Uint8Array, b: Samples, tb: Uint8Array, out: Uint8Array): void;
  copyRows: PixelKernels['copyRows'];
}

/** Where `npm run build` (native/build.mjs, node-gyp) puts the addon, from src/ and dist/ alike. */
export const NATIVE_PIXEL_KERNELS_PATH = join(__dirname, '../native/build/Release/pixel_kernels.node');

let loaded: { kernels: PixelKernels } | { error: string } | undefined;

/**
 * The C kernels, or why they cannot be used (not built: no C compiler when `npm run build` ran, which
 * then said so). Loaded once per process.
 */
export function nativePixelKernels(): PixelKernels | { error: string } {
  if (!loaded) {
    try {
      const addon = require(NATIVE_PIXEL_KERNELS_PATH) as PixelKernelsAddon;
      loaded = {
        kernels: {
          implementation: 'native',
          fusedColor1: (a, ta, ca, out) => addon.fusedColor('add', out, a, ta, ca),
          fusedColor2: (mode, a, ta, ca, b, tb, cb, out) => addon.fusedColor(mode, out, a, ta, ca, b, tb, cb),
          fusedColor3: (mode, a, ta, ca, b, tb, cb, c, tc, cc, out) => addon.fusedColor(mode, out, a, ta, ca, b, tb, cb, c, tc, cc),
          writeRgbTables: (r, tr, g, tg, b, tb, out) => addon.writeRgbTables(r, tr, g, tg, b, tb, out),
          copyRows: addon.copyRows,
        },
      };
    } catch (error) {
      loaded = { error: `${NATIVE_PIXEL_KERNELS_PATH} could not be loaded: ${(error as Error).message.split('\n')[0]}` };
    }
  }
  return 'kernels' in loaded ? loaded.kernels : loaded;
}

/** The native kernels where built, else the JavaScript ones (the same bytes, slower). */
export function fastestPixelKernels(): PixelKernels {
  const native = nativePixelKernels();
  return 'error' in native ? javascriptPixelKernels : native;
}

import type { DType } from './dataset';

export type PixelArray = Uint8Array | Uint16Array | Float32Array;

/** One decoded source tile: one channel of one plane at one level, row-major, `width * height` samples. */
export interface SourceTile {
  width: number;
  height: number;
  dtype: DType;
  data: PixelArray;
}

/** Largest value a dtype holds (float32 sources are windowed explicitly or by statistics). */
export const DTYPE_MAX: Record<DType, number> = { uint8: 255, uint16: 65535, float32: 1 };

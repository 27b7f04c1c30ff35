// The entry that brings sharp: only a process that encodes tiles (the worker, benches) imports it.
import { createTileRenderer, type TileRenderer, type TileRendererOptions } from './renderer';
import { SharpTileEncoder, type SharpEncoderOptions } from './sharp-tile-encoder';

export { configureSharp, SharpTileEncoder } from './sharp-tile-encoder';
export type { SharpEncoderOptions, SharpSettings } from './sharp-tile-encoder';

/** A tile renderer that encodes with sharp. */
export function createSharpTileRenderer(options: Omit<TileRendererOptions, 'encoder'> & SharpEncoderOptions = {}): TileRenderer {
  return createTileRenderer({ ...options, encoder: new SharpTileEncoder(options) });
}

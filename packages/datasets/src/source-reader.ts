import type { SourceTile } from '@tilefarm/contracts';
import { TilefarmError } from '@tilefarm/contracts';
import type { ObjectStore } from '@tilefarm/storage';
import type { SourceBufferPool } from './source-buffer-pool';
import { decodeSourceTile, SourceTileFormatError } from './source-tile-codec';
import { sourceTileKey, type SourceTilePosition } from './storage-layout';

/**
 * Reads and decodes one source tile; a missing or corrupt tile is `source_unreadable` (not retried).
 * With a pool (and a store that can read into given memory), the bytes go into a pooled buffer: a
 * raw-v1 tile's samples then view it, and whoever keeps the tile retires `tile.data` to the
 * pool when done with it; a tile decoded into memory of its own (deflate) gives the buffer back at once.
 */
export async function readSourceTile(store: ObjectStore, id: string, version: number, position: SourceTilePosition, pool?: SourceBufferPool): Promise<SourceTile> {
  const key = sourceTileKey(id, version, position);
  const bytes = pool && store.getInto ? await store.getInto(key, (size) => pool.allocate(size)) : await store.get(key);
  if (!bytes) throw new TilefarmError('source_unreadable', `source tile missing: ${id} v${version} level ${position.level} c${position.c} z${position.z} t${position.t} (${position.x}, ${position.y})`);
  let tile: SourceTile;
  try {
    tile = decodeSourceTile(bytes);
  } catch (e) {
    pool?.recycle(bytes);
    if (e instanceof SourceTileFormatError) throw new TilefarmError('source_unreadable', `source tile corrupt (${e.message}): ${key}`);
    throw e;
  }
  if (pool && tile.data.buffer !== bytes.buffer) pool.recycle(bytes);
  return tile;
}

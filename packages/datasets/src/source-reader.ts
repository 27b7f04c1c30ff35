import type { SourceTile } from '@tilefarm/contracts';
import { TilefarmError } from '@tilefarm/contracts';
import type { ObjectStore } from '@tilefarm/storage';
import { decodeSourceTile, SourceTileFormatError } from './source-tile-codec';
import { sourceTileKey, type SourceTilePosition } from './storage-layout';

/** Reads and decodes one source tile; a missing or corrupt tile is `source_unreadable` (not retried). */
export async function readSourceTile(store: ObjectStore, id: string, version: number, position: SourceTilePosition): Promise<SourceTile> {
  const key = sourceTileKey(id, version, position);
  const bytes = await store.get(key);
  if (!bytes) throw new TilefarmError('source_unreadable', `source tile missing: ${id} v${version} level ${position.level} c${position.c} z${position.z} t${position.t} (${position.x}, ${position.y})`);
  try {
    return decodeSourceTile(bytes);
  } catch (e) {
    if (e instanceof SourceTileFormatError) throw new TilefarmError('source_unreadable', `source tile corrupt (${e.message}): ${key}`);
    throw e;
  }
}

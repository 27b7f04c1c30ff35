import { createHash } from 'node:crypto';
import type { RenderRegion, TileAddress } from '@tilefarm/contracts';

/**
 * Where everything lives in the object store. One place, so adapters, workers, the API and the
 * ingest agree on it:
 *   catalog/{id}.json                              current manifest of a dataset (written last)
 *   datasets/{id}/v{n}/manifest.json               manifest of version n (immutable)
 *   datasets/{id}/v{n}/stats.json                  per channel and plane statistics
 *   datasets/{id}/v{n}/src/{level}/{t}/{z}/{c}/{y}/{x}.tfs   source tiles (raw-v1 by default; raw-deflate-v1 still read)
 *   owners/{id}.json                               a deleted dataset's owner and last version (ids are never reused by others)
 *   specs/{specId}.json                            render specs by id
 *   tiles/{shard}/{id}/v{n}/{specId}-l{level}-z{z}-t{t}-x{x}-y{y}.{format}   rendered tiles
 *   tiles/{shard}/{id}/v{n}/{specId}-r-z{z}-t{t}-l{level}-{x}_{y}_{w}_{h}-{ow}x{oh}[_{pw}x{ph}].{format}   region renders
 *   uploads/{uploadId}/upload.json, parts/{n}.json, source.{ext}   a browser upload until its ingest ends (uploads.ts)
 * Rendered tile keys start with a hash shard so S3 spreads them over partitions.
 */
export const catalogPrefix = 'catalog/';

export function catalogKey(id: string): string {
  return `${catalogPrefix}${id}.json`;
}

export function versionManifestKey(id: string, version: number): string {
  return `datasets/${id}/v${version}/manifest.json`;
}

/** Everything of one version lives under this prefix (used to clean up a failed ingest). */
export function versionPrefix(id: string, version: number): string {
  return `datasets/${id}/v${version}/`;
}

export function statsKey(id: string, version: number): string {
  return `datasets/${id}/v${version}/stats.json`;
}

export interface SourceTilePosition {
  level: number;
  t: number;
  z: number;
  c: number;
  x: number;
  y: number;
}

export function sourceTileKey(id: string, version: number, p: SourceTilePosition): string {
  return `datasets/${id}/v${version}/src/${p.level}/${p.t}/${p.z}/${p.c}/${p.y}/${p.x}.tfs`;
}

/** Kept when a dataset is deleted: the id stays its owner's, and its versions are never reused. */
export function ownerRecordKey(id: string): string {
  return `owners/${id}.json`;
}

/** Rendered tiles of one version: one prefix per hash shard (see tileKey). */
export function renderedVersionPrefixes(id: string, version: number): string[] {
  return Array.from({ length: 256 }, (_, i) => `tiles/${i.toString(16).padStart(2, '0')}/${id}/v${version}/`);
}

export function specKey(specId: string): string {
  return `specs/${specId}.json`;
}

/**
 * The content key of a rendered tile: storage key and BullMQ job id at once, so identical requests
 * coalesce into one job. It never contains ":" and is never all digits (BullMQ's rules for ids).
 * The spec and the tile's address are one file name, not directories: on the local store every
 * directory level in a key is a directory to create, and with the hash shard in front nearly every
 * cold tile of a new spec landed in a directory of its own (until session 5 level/z/t: four mkdirs
 * per tile, 13 % of a worker's wall time in bench:peer; until session 8 the spec's: 0.6 per tile of
 * a new spec, a mkdir as costly as the tile's own write, 0.1-0.5 ms of CPU on ext4). Now a shard
 * costs one directory per dataset version, once. Keys of the older shape (`{specId}/l...`) are
 * still served where such files exist.
 */
export function tileKey(dataset: string, version: number, specId: string, tile: TileAddress): string {
  const rest = `${dataset}/v${version}/${specId}-l${tile.level}-z${tile.z}-t${tile.t}-x${tile.x}-y${tile.y}.${tile.format}`;
  const shard = createHash('sha1').update(rest).digest('hex').slice(0, 2);
  return `tiles/${shard}/${rest}`;
}

/** The content key of a region render (see RenderRegion): every field that changes its pixels is in it, as one name (see tileKey). */
export function regionKey(dataset: string, version: number, specId: string, at: { z: number; t: number; format: string }, r: RenderRegion): string {
  const pad = r.padWidth !== undefined || r.padHeight !== undefined ? `_${r.padWidth ?? r.outWidth}x${r.padHeight ?? r.outHeight}` : '';
  const rest = `${dataset}/v${version}/${specId}-r-z${at.z}-t${at.t}-l${r.level}-${r.x}_${r.y}_${r.width}_${r.height}-${r.outWidth}x${r.outHeight}${pad}.${at.format}`;
  const shard = createHash('sha1').update(rest).digest('hex').slice(0, 2);
  return `tiles/${shard}/${rest}`;
}

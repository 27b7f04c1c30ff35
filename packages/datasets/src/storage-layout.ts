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
 *   tiles/{shard}/{id}/v{n}/{specId}/{level}/{z}/{t}/{x}_{y}.{format}   rendered tiles
 *   tiles/{shard}/{id}/v{n}/{specId}/r/{z}/{t}/{x}_{y}_{w}_{h}/{level}/{ow}x{oh}[_{pw}x{ph}].{format}   region renders
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
 */
export function tileKey(dataset: string, version: number, specId: string, tile: TileAddress): string {
  const rest = `${dataset}/v${version}/${specId}/${tile.level}/${tile.z}/${tile.t}/${tile.x}_${tile.y}.${tile.format}`;
  const shard = createHash('sha1').update(rest).digest('hex').slice(0, 2);
  return `tiles/${shard}/${rest}`;
}

/** The content key of a region render (see RenderRegion): every field that changes its pixels is in it. */
export function regionKey(dataset: string, version: number, specId: string, at: { z: number; t: number; format: string }, r: RenderRegion): string {
  const pad = r.padWidth !== undefined || r.padHeight !== undefined ? `_${r.padWidth ?? r.outWidth}x${r.padHeight ?? r.outHeight}` : '';
  const rest = `${dataset}/v${version}/${specId}/r/${at.z}/${at.t}/${r.x}_${r.y}_${r.width}_${r.height}/${r.level}/${r.outWidth}x${r.outHeight}${pad}.${at.format}`;
  const shard = createHash('sha1').update(rest).digest('hex').slice(0, 2);
  return `tiles/${shard}/${rest}`;
}

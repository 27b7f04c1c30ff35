import { basename, dirname } from 'node:path';
import type { DatasetManifest } from '@tilefarm/contracts';
import { LocalObjectStore } from '@tilefarm/storage';
import type { openZarrImage } from '@tilefarm/zarr';

/** Where a fixture Zarr on local disk lies, as the readers take it (its folder's store and its name). */
export const placeOf = (path: string) => ({ store: new LocalObjectStore(dirname(path)), prefix: `${basename(path)}/` });

/** The manifest registration would publish for an opened Zarr linked at `url` (tests read tiles through it). */
export function manifestFor(opened: Awaited<ReturnType<typeof openZarrImage>>, url: string): DatasetManifest {
  const im = opened.image;
  return {
    v: 1, id: 'linked', version: 1, tenant: 'public', width: im.width, height: im.height, sizeZ: im.sizeZ, sizeT: im.sizeT, tileSize: 256,
    levels: im.levels.length, dtype: im.dtype, channels: im.channels, sourceEncoding: 'raw-v1', createdAt: new Date().toISOString(),
    source: { kind: 'zarr', url, zarrFormat: opened.zarrFormat, ngffVersion: im.ngffVersion, fingerprint: opened.fingerprint },
  };
}

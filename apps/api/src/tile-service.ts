import { createHash } from 'node:crypto';
import { MIME_TYPES, type ImageFormat } from '@tilefarm/contracts';
import type { RequestedPosition, TileRequestService } from '@tilefarm/tile-requests';
import type { ApiMetrics } from '@tilefarm/telemetry';

export type TileAnswer =
  | { kind: 'image'; key: string; body: Buffer; contentType: string; etag: string; version: number }
  | { kind: 'pending'; key: string; url: string };

/** Who an HTTP tile is asked for: the tenant of the request's token, if any (fair share of the workers). */
export interface TileRequester {
  tenant?: string | undefined;
}

export function etagOf(key: string): string {
  return `"${createHash('sha1').update(key).digest('hex').slice(0, 20)}"`;
}

/**
 * Plain HTTP tile requests over the tile-request service (which holds every rule: storage first,
 * coalescing, load shedding, the bounded wait): this only shapes the answer and counts it.
 */
export class TileService {
  constructor(
    private readonly deps: {
      service: Pick<TileRequestService, 'httpTile'>;
      metrics: Pick<ApiMetrics, 'cacheHits' | 'enqueued'>;
      tileUrl: (key: string) => string;
      waitMs: number;
    },
  ) {}

  async get(dataset: string, specRef: unknown, position: RequestedPosition & { format: ImageFormat }, wait: boolean, requester: TileRequester = {}): Promise<TileAnswer> {
    const { service, metrics } = this.deps;
    const got = await service.httpTile(dataset, specRef, position, { wait, waitMs: this.deps.waitMs, tenant: requester.tenant });
    if (got.kind === 'image' && got.fromStore) metrics.cacheHits.inc();
    else metrics.enqueued.inc();
    const key = got.tile.key;
    if (got.kind === 'pending') return { kind: 'pending', key, url: this.deps.tileUrl(key) };
    return { kind: 'image', key, body: got.body, contentType: MIME_TYPES[got.tile.tile.format], etag: etagOf(key), version: got.plan.manifest.version };
  }
}

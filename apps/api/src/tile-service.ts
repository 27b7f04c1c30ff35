import { createHash } from 'node:crypto';
import { MIME_TYPES, TilefarmError, asErrorCode, type ImageFormat, type TileEvent } from '@tilefarm/contracts';
import { PRIORITY } from '@tilefarm/queue';
import type { ObjectStore } from '@tilefarm/storage';
import type { RequestedPosition, TileDelivery, TilePlanner } from '@tilefarm/tile-requests';
import type { ApiMetrics } from '@tilefarm/telemetry';

export type TileAnswer =
  | { kind: 'image'; key: string; body: Buffer; contentType: string; etag: string; version: number }
  | { kind: 'pending'; key: string; url: string };

export function etagOf(key: string): string {
  return `"${createHash('sha1').update(key).digest('hex').slice(0, 20)}"`;
}

/** Plain HTTP tile requests: served from storage, or rendered by the workers while the request waits (bounded). */
export class TileService {
  constructor(
    private readonly deps: {
      planner: TilePlanner;
      delivery: TileDelivery;
      store: ObjectStore;
      metrics: ApiMetrics;
      tileUrl: (key: string) => string;
      waitMs: number;
      /** True while the render queue is over its budget: new renders are refused (503 queue_full). */
      overloaded?: () => boolean;
    },
  ) {}

  async get(dataset: string, specRef: unknown, position: RequestedPosition & { format: ImageFormat }, wait: boolean): Promise<TileAnswer> {
    const { planner, delivery, store, metrics } = this.deps;
    const plan = await planner.plan(dataset, specRef, [position]);
    const planned = plan.tiles[0]!;
    const version = plan.manifest.version;
    const image = async (): Promise<TileAnswer | undefined> => {
      const body = await store.get(planned.key);
      return body && { kind: 'image', key: planned.key, body, contentType: MIME_TYPES[planned.tile.format], etag: etagOf(planned.key), version };
    };
    const stored = await image();
    if (stored) {
      metrics.cacheHits.inc();
      return stored;
    }
    let settle: (event: TileEvent | undefined) => void = () => undefined;
    const outcome = new Promise<TileEvent | undefined>((resolve) => (settle = resolve));
    const listener = (event: TileEvent) => settle(event);
    if (this.deps.overloaded?.()) throw new TilefarmError('queue_full', 'the render queue is over capacity; try again shortly');
    const result = await delivery.request(plan, [planned], PRIORITY.http, listener);
    if (result.ready.length > 0) {
      const found = await image();
      if (found) return found;
    }
    metrics.enqueued.inc();
    if (!wait) return { kind: 'pending', key: planned.key, url: this.deps.tileUrl(planned.key) };
    const timer = setTimeout(() => settle(undefined), this.deps.waitMs);
    const event = await outcome;
    clearTimeout(timer);
    if (!event) {
      await delivery.release([planned.key], listener);
      throw new TilefarmError('render_timeout', `tile not rendered within ${this.deps.waitMs} ms; try again`);
    }
    if (event.type === 'failed') throw new TilefarmError(asErrorCode(event.code, 'render_failed'), event.message);
    const done = await image();
    if (!done) throw new TilefarmError('render_failed', 'tile announced but not found in storage');
    return done;
  }
}

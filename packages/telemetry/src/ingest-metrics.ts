import { Counter, Histogram, type Registry } from 'prom-client';

/** A worker's share of queued ingests (apps/worker/src/ingest-service.ts). */
export function createIngestMetrics(registry: Registry) {
  return {
    units: new Counter({ name: 'tilefarm_ingest_units_total', help: 'Ingest units (file pages) this worker wrote completely', registers: [registry] }),
    tiles: new Counter({ name: 'tilefarm_ingest_tiles_total', help: 'Source tiles this worker wrote for queued ingests', registers: [registry] }),
    unitSeconds: new Histogram({ name: 'tilefarm_ingest_unit_seconds', help: 'Time to ingest one unit', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers: [registry] }),
    published: new Counter({ name: 'tilefarm_ingests_published_total', help: 'Queued ingests this worker finished and published', registers: [registry] }),
    failures: new Counter({ name: 'tilefarm_ingest_failures_total', help: 'Queued ingests that failed, by error code', labelNames: ['code'] as const, registers: [registry] }),
  };
}
export type IngestMetrics = ReturnType<typeof createIngestMetrics>;

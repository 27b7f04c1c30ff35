import type { RequestListener } from 'node:http';
import express, { type Express } from 'express';
import { MAX_JSON_BODY_BYTES } from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import type { RedisClient } from '@tilefarm/queue';
import type { QueueDashboardAdapter } from '@tilefarm/queue/dashboard';
import type { ObjectStore } from '@tilefarm/storage';
import type { RequestedRegionLimits } from '@tilefarm/contracts';
import type { SpecRegistry, TilePlanner } from '@tilefarm/tile-requests';
import type { ApiMetrics, Logger, MetricsRegistry } from '@tilefarm/telemetry';
import { accessControl, securityHeaderSets, securityHeaders, type AccessRules, type HeaderSetter } from './access';
import { errorHandler, notFound } from './http-errors';
import { adminRoutes } from './routes/admin';
import { viewerConfigRoutes, type ViewerGatewaySettings } from './routes/viewer-config';
import { datasetRoutes } from './routes/datasets';
import { healthRoutes } from './routes/health';
import { ingestRoutes, type IngestRouteDeps } from './routes/ingests';
import { specRoutes } from './routes/specs';
import { omeroRoutes } from './routes/omero';
import { iiifRoutes } from './routes/iiif';
import { dziRoutes } from './routes/dzi';
import { catmaidInfoRoutes, catmaidRoutes } from './routes/catmaid';
import { imageCors, imageCorsHeaders } from './cors';
import { storedTileDoor } from './stored-tile-door';
import { STORED_TILE_PATH, storedTile, tileRoutes } from './routes/tiles';
import { tileUrlRoutes } from './routes/tile-urls';
import { zarrViewRoutes, type ZarrViewDeps } from './routes/zarr-view';
import { zarrUrlRoutes } from './routes/zarr-urls';
import { renderSettingsRoutes } from './routes/render-settings';
import { uploadRoutes, type UploadRouteDeps } from './routes/uploads';
import type { TileService } from './tile-service';

export interface ApiDeps {
  logger: Logger;
  registry: MetricsRegistry;
  metrics: ApiMetrics;
  redis: RedisClient;
  store: ObjectStore;
  catalog: DatasetCatalog;
  specs: SpecRegistry;
  /** Checks specs against datasets where they are saved (cost ceiling), as tile requests are. */
  planner: Pick<TilePlanner, 'checkSpec'>;
  tiles: TileService;
  viewerDir?: string;
  /** Queue dashboard at /admin/queues; off (404) without a token. */
  admin?: { token: string | undefined; queues: QueueDashboardAdapter[] };
  /** Where browsers reach the gateway (GET /v1/config). */
  gateway: ViewerGatewaySettings;
  /** POST /v1/datasets (queued ingest) and GET /v1/ingests/:jobId. */
  ingests?: IngestRouteDeps;
  /** Browser uploads (/v1/uploads), ingested like POST /v1/datasets. */
  uploads?: UploadRouteDeps;
  isStopping: () => boolean;
  /** GET /zarr/{id}.zarr/...: the OME-Zarr view of every dataset. */
  zarrView?: Omit<ZarrViewDeps, 'catalog' | 'specs'>;
  /** Tokens, tenants and signed URLs (see access.ts); absent = open. */
  access?: AccessRules;
  /** Origins allowed to read images cross-origin (see cors.ts); default none. */
  corsOrigins?: '*' | string[];
  /** Bounds of region renders (IIIF and OMERO regions); default 4096 px a side. */
  regions?: RequestedRegionLimits;
  /** Base URL browsers reach this API at (IIIF ids, CATMAID mirror URLs). */
  publicUrl: string;
}

/** What the API's HTTP server runs: stored tiles through their door (stored-tile-door.ts), everything else through `app`. */
export function buildRequestListener(deps: ApiDeps, app: RequestListener = buildApp(deps)): RequestListener {
  const cors = imageCorsHeaders(deps.corsOrigins ?? []);
  // In the app's order: helmet's headers, then CORS (a /tiles/ path is an image path).
  const headers: HeaderSetter[] = [securityHeaderSets().withCsp, ...(cors ? [cors as HeaderSetter] : [])];
  return storedTileDoor({ store: deps.store, access: deps.access, headers, metrics: deps.metrics }, app);
}

/** The Express app, built from its parts; main.ts owns their lifetimes. */
export function buildApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // tiles set their own ETags
  app.use((req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      const route = (req.route as { path?: unknown } | undefined)?.path;
      deps.metrics.httpSeconds.observe({ route: typeof route === 'string' ? route : 'other', status: String(res.statusCode) }, (performance.now() - started) / 1000);
    });
    res.setHeader('X-Content-Type-Options', 'nosniff');
    next();
  });
  app.use(securityHeaders());
  app.use(express.json({ limit: MAX_JSON_BODY_BYTES }));
  app.use(imageCors(deps.corsOrigins ?? []));
  if (deps.access) app.use(accessControl(deps.access));
  app.get(STORED_TILE_PATH, storedTile(deps.store));
  app.use(healthRoutes(deps.redis, deps.store, deps.isStopping));
  app.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });
  app.use(datasetRoutes(deps.catalog));
  app.use(renderSettingsRoutes(deps.catalog, deps.store, deps.planner));
  if (deps.ingests) app.use(ingestRoutes(deps.ingests));
  if (deps.uploads) app.use(uploadRoutes(deps.uploads));
  app.use(specRoutes(deps.specs, deps.catalog, deps.planner));
  app.use(tileRoutes(deps.tiles));
  if (deps.access) app.use(tileUrlRoutes(deps.catalog, deps.access.signer));
  const protocol = { catalog: deps.catalog, specs: deps.specs, tiles: deps.tiles, regions: deps.regions ?? { maxSide: 4096 }, publicUrl: deps.publicUrl };
  app.use(omeroRoutes(protocol));
  app.use(iiifRoutes(protocol));
  app.use(dziRoutes(protocol));
  app.use(catmaidRoutes(protocol));
  app.use(catmaidInfoRoutes(deps.catalog, deps.publicUrl));
  app.use(viewerConfigRoutes(deps.gateway));
  if (deps.zarrView) app.use(zarrViewRoutes({ ...deps.zarrView, catalog: deps.catalog, specs: deps.specs }));
  if (deps.zarrView && deps.access) app.use(zarrUrlRoutes(deps.catalog, deps.access.signer));
  if (deps.admin) app.use(adminRoutes(deps.admin));
  if (deps.viewerDir) app.use(express.static(deps.viewerDir, { index: 'index.html', maxAge: '5m' }));
  app.use(notFound);
  app.use(errorHandler(deps.logger));
  return app;
}

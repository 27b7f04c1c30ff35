export { ingestFile, planIngest, ingestPlane, finishIngest, discardIngest, DEFAULT_MAX_SOURCE_PIXELS, DEFAULT_MAX_WRITE_RATIO, MIN_WRITE_ALLOWANCE_BYTES } from './ingest';
export type { IngestFileOptions, IngestPlan, IngestPlaneOptions, IngestProgress, PlanIngestOptions, VersionReservations, IngestCoordination, HeldDatasetLock } from './ingest';
export { IngestError, isIngestError } from './errors';
export type { IngestProblem } from './errors';
export type { PlaneUnit, SourceLayout } from './source-layout';
export { MAX_RASTER_PIXELS } from './source-layout';
export { IngestSourceFiles, parseIngestSource, type IngestSourceRules } from './ingest-source';
export type { IngestSource, IngestSourceFilesOptions, LocalSource, ObjectDownloader, UploadedSources } from './ingest-source';

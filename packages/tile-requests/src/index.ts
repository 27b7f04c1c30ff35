export * from './spec-registry';
export * from './tile-planner';
export * from './tile-delivery';
export * from './tenant-access';
export * from './omero-params';
export * from './tile-request-stack';

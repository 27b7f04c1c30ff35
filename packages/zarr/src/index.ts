export * from './object-store-readable';
export * from './zarr-library';
export * from './ngff-image';
export * from './chunked-tile-reader';
export * from './linked-zarr';

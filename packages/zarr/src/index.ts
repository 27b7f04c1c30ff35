export * from './object-store-readable';
export * from './zarr-library';
export * from './ngff-image';
export * from './chunked-tile-reader';
export * from './linked-zarr';
export * from './zarr-view';
export * from './dataset-pixels';
export * from './register-linked';

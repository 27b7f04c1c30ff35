export * from './storage-layout';
export * from './source-tile-codec';
export * from './statistics';
export * from './pyramid';
export * from './dataset-catalog';
export * from './synthetic-dataset';
export * from './source-reader';
export * from './uploads';

import type { Config } from 'jest';

// Sources are transpiled by swc (types are checked by `tsc -b`, which `npm test` runs first).
// Workspace imports resolve to sources, so a unit test never runs stale `dist/` code; the
// integration tests spawn the built apps (`apps/*/dist/main.js`) as real OS processes.
const transform: Config['transform'] = {
  // Only the ES-module packages named in transformIgnorePatterns below reach this rule.
  // @thi.ng's packages read Vite's import.meta.env where there is no process (never under node):
  // CommonJS has no import.meta, so it is replaced by undefined.
  '^.+\\.js$': ['@swc/jest', { jsc: { target: 'es2022', transform: { optimizer: { globals: { vars: { 'import.meta.env': 'undefined' } } } } }, module: { type: 'commonjs' } }],
  '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
};
const moduleNameMapper = {
  // Second entries of a package (see packages/*/<entry>/package.json): the one that brings sharp, the one that brings bull-board, the apps' first import.
  '^@tilefarm/render/encoder$': '<rootDir>/packages/render/src/encoder',
  '^@tilefarm/queue/dashboard$': '<rootDir>/packages/queue/src/queue-dashboard',
  '^@tilefarm/telemetry/early-signals$': '<rootDir>/packages/telemetry/src/early-signals',
  '^@tilefarm/(contracts|config|telemetry|render|storage|queue|datasets|ingest|tile-requests|zarr)$': '<rootDir>/packages/$1/src',
  '^zarrita$': '<rootDir>/node_modules/zarrita/dist/src/index.js',
  '^@zarrita/storage$': '<rootDir>/node_modules/@zarrita/storage/dist/src/index.js',
  '^@zarrita/storage/(.*)$': '<rootDir>/node_modules/@zarrita/storage/dist/src/$1.js',
  '^numcodecs$': '<rootDir>/node_modules/numcodecs/dist/index.js',
  '^numcodecs/(blosc|gzip|lz4|zlib|zstd)$': '<rootDir>/node_modules/numcodecs/dist/$1.js',
};

const config: Config = {
  testEnvironment: 'node',
  transform,
  moduleNameMapper,
  testMatch: ['<rootDir>/packages/*/test/**/*.test.ts', '<rootDir>/apps/*/test/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  // zarrita and its codecs, and @thi.ng/malloc, ship only as ES modules: swc turns them into
  // CommonJS for jest, and zarrita's "import"-only exports are mapped to files above. (The built
  // apps import them natively.)
  transformIgnorePatterns: ['/node_modules/(?!(zarrita|@zarrita|numcodecs|@thi\\.ng)/)'],
  // Integration tests start real processes and measure timing on 2 cores: one suite at a time.
  maxWorkers: 1,
  testTimeout: 60_000,
  // A leaked handle must not turn into a CI run that never ends; leaks still show as warnings.
  forceExit: true,
  // test-results/jest.json after every run: .ci/run's summary line counts from it.
  testResultsProcessor: '<rootDir>/test/support/jest-results-file.js',
};

export default config;

import type { Config } from 'jest';

// Sources are transpiled by swc (types are checked by `tsc -b`, which `npm test` runs first).
// Workspace imports resolve to sources, so a unit test never runs stale `dist/` code; the
// integration tests spawn the built apps (`apps/*/dist/main.js`) as real OS processes.
const transform: Config['transform'] = {
  '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
};
const moduleNameMapper = {
  '^@tilefarm/(contracts|config|telemetry|render|storage|queue|datasets|ingest|tile-requests)$': '<rootDir>/packages/$1/src',
};

const config: Config = {
  testEnvironment: 'node',
  transform,
  moduleNameMapper,
  testMatch: ['<rootDir>/packages/*/test/**/*.test.ts', '<rootDir>/apps/*/test/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  // Integration tests start real processes and measure timing on 2 cores: one suite at a time.
  maxWorkers: 1,
  testTimeout: 60_000,
  // A leaked handle must not turn into a CI run that never ends; leaks still show as warnings.
  forceExit: true,
  // test-results/jest.json after every run: .ci/run's summary line counts from it.
  testResultsProcessor: '<rootDir>/test/support/jest-results-file.js',
};

export default config;

// Jest's aggregated results (the same object `jest --json` prints) written to
// test-results/jest.json on every run, so .ci/run can count passed/failed tests while running the
// README's plain `npm ci && npm test`.
const { mkdirSync, writeFileSync } = require('node:fs');
const { resolve } = require('node:path');

module.exports = function writeResultsFile(results) {
  const dir = resolve(__dirname, '../../test-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(resolve(dir, 'jest.json'), JSON.stringify(results));
  return results;
};

import { environmentWithFile } from '@tilefarm/config';
import { runIngestCli } from './cli';

/** Composition root of `npm run ingest -- FILE --id NAME`: the environment is read here, once. */
const controller = new AbortController();
process.once('SIGINT', () => controller.abort());
void runIngestCli(process.argv.slice(2), environmentWithFile(process.env), { stdout: process.stdout, stderr: process.stderr, signal: controller.signal }).then((code) => {
  process.exitCode = code;
});

import pino from 'pino';

export type Logger = pino.Logger;

/** JSON logs to stdout, one logger per process, named for the app. */
export function createLogger(app: string, level: string): Logger {
  return pino({ name: app, level, base: { app, pid: process.pid } });
}

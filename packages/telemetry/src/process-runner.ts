import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Registry } from 'prom-client';
import { createLogger, type Logger } from './logger';
import { createRegistry } from './metrics';
import { takeOverSignals } from './early-signals';

/** What every long-running tilefarm process reads from its configuration to be run. */
export interface RunnableConfig {
  LOG_LEVEL: string;
  /** How long a stop may take to finish the work in hand before the process exits anyway. */
  SHUTDOWN_TIMEOUT_MS: number;
}

export interface ProcessContext<C> {
  config: C;
  logger: Logger;
  registry: Registry;
  /** True from the first stop signal on: readiness answers 503 so load balancers move away. */
  isStopping(): boolean;
}

export interface RunningProcess {
  /** Stop taking work, finish or hand back what is in hand within `deadlineMs`, release connections. */
  stop(deadlineMs: number): Promise<void>;
}

/** A stop that overruns its deadline by this much is abandoned: the process exits with code 1. */
const STOP_OVERRUN_MS = 5000;

/**
 * Runs one process the same way for the api, gateway and worker: configuration read once (a bad
 * configuration prints every problem and exits 1, before anything is opened), one logger and one
 * metrics registry named for the app, SIGTERM/SIGINT answered by one bounded stop, then exit.
 */
export function runProcess<C extends RunnableConfig>(app: string, configure: () => C, start: (context: ProcessContext<C>) => Promise<RunningProcess>): void {
  let config: C;
  try {
    config = configure();
  } catch (e) {
    // Only configuration problems are expected here; their message already lists every one.
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  }
  const logger = createLogger(app, config.LOG_LEVEL);
  let stopping = false;
  const context: ProcessContext<C> = { config, logger, registry: createRegistry(app), isStopping: () => stopping };
  // Signals are answered from the first moment: one during start stops the process once started.
  let running: Promise<RunningProcess> = new Promise(() => undefined);
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const overrun = setTimeout(() => {
      logger.error({ signal, deadlineMs: config.SHUTDOWN_TIMEOUT_MS }, 'stop overran its deadline; exiting');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS + STOP_OVERRUN_MS);
    overrun.unref();
    try {
      await (await running).stop(config.SHUTDOWN_TIMEOUT_MS);
    } catch (e) {
      logger.error({ err: e }, 'stop failed');
      process.exit(1);
    }
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // Signals that came while the app's modules loaded (early-signals.ts), answered once started.
  const early = takeOverSignals();
  running = start(context);
  running.catch((e: unknown) => {
    logger.fatal({ err: e }, 'start failed');
    process.exit(1);
  });
  if (early.length > 0) void stop(early[0]!);
}

/** Resolves when `work` does or after `ms`, whichever is first: a drain that must not hold a stop forever. */
export async function within(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/**
 * Listens and resolves with the bound port, or rejects with a message that names the address, so
 * a port already taken ends the start with a clear "start failed" log instead of an unhandled
 * 'error' event.
 */
export async function listen(server: NetServer, port: number, host?: string): Promise<number> {
  await new Promise<void>((done, fail) => {
    const failed = (e: NodeJS.ErrnoException) => {
      const where = `${host ?? '*'}:${port}`;
      fail(new Error(e.code === 'EADDRINUSE' ? `cannot listen on ${where}: the port is already in use (EADDRINUSE)` : `cannot listen on ${where}: ${e.message}`, { cause: e }));
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      done();
    });
  });
  return (server.address() as AddressInfo).port;
}

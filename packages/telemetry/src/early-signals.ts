/**
 * The first import of every app's main.ts, so that from the process's first moment SIGTERM and
 * SIGINT are caught instead of fatal. Loading an app's modules (sharp, koffi, BullMQ, the AWS
 * SDK, ...) takes 0.5-1 s, more on a busy machine, and runProcess's handlers only exist after it: a
 * signal in that time killed the process by the signal's default action, exit code null, nothing
 * drained (a deploy stopping a worker that was still starting; the graceful-shutdown suite on a
 * busy CI machine). A signal that comes early is kept here and answered by runProcess once it runs.
 * Should it never run (a load that hangs), the process exits 1 after EARLY_EXIT_MS.
 */
export const EARLY_EXIT_MS = 10_000;

const received: NodeJS.Signals[] = [];
let takenOver = false;

const keep = (signal: NodeJS.Signals) => {
  if (takenOver) return;
  received.push(signal);
  setTimeout(() => {
    if (!takenOver) process.exit(1);
  }, EARLY_EXIT_MS).unref();
};
process.on('SIGTERM', keep);
process.on('SIGINT', keep);

/**
 * For runProcess, once its own handlers are installed (so the signal watchers never stop in
 * between): the signals that came before, which it answers from now on.
 */
export function takeOverSignals(): NodeJS.Signals[] {
  takenOver = true;
  process.off('SIGTERM', keep);
  process.off('SIGINT', keep);
  return received.splice(0);
}

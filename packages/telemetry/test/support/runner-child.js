// A process run by runProcess, driven by the test through its environment (MODE) and signals.
const { runProcess } = require('@tilefarm/telemetry');

runProcess(
  'runner-test',
  () => {
    if (process.env.MODE === 'bad-config') throw new Error('invalid configuration:\n  - PORT: too big\n  - REDIS_URL: not a URL');
    return { LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: 200 };
  },
  async ({ logger, isStopping }) => {
    if (process.env.MODE === 'start-fails') throw new Error('redis refused');
    const keepAlive = setInterval(() => undefined, 1000);
    logger.info('started');
    return {
      async stop(deadlineMs) {
        console.log(JSON.stringify({ stopCalled: true, deadlineMs, stopping: isStopping() }));
        if (process.env.MODE === 'stop-hangs') await new Promise(() => undefined);
        clearInterval(keepAlive);
      },
    };
  },
);

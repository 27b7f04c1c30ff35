// An app signalled while its modules still load (a deploy stopping a worker that is starting, on a
// busy machine): SIGTERM arrives, then ~300 ms of loading, then runProcess (runner-child.js).
// EARLY=0 leaves out the first import every app's main.ts has.
if (process.env.EARLY !== '0') require('@tilefarm/telemetry/early-signals');
process.kill(process.pid, 'SIGTERM');
const loaded = Date.now() + 300;
while (Date.now() < loaded) {
  // modules loading
}
require('./runner-child.js');

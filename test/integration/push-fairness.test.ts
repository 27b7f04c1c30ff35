import { io } from 'socket.io-client';
import { SOCKET_PROTOCOL } from '@tilefarm/contracts';
import { TestSystem } from '../support/system';
import { PushViewer, sleep, specVariant, type RequestedTile } from './push-viewer';

// Issue 5, fairness and backpressure: one greedy viewer is told it is over budget (and the others
// are still served), a long queue is announced with tile:queued, an overloaded system sheds load
// with a clear event; and every malformed event is answered with an error ack, never a crash or a
// dropped socket. No worker runs until the test says so, so queue depths are deterministic.

const DATASET = { id: 'grid', width: 512, height: 512, sizeZ: 6, tileSize: 256 as const };
function gridTiles(zs = 5): RequestedTile[] {
  const out: RequestedTile[] = [];
  for (let z = 0; z < zs; z++) {
    for (let y = 0; y < 2; y++) for (let x = 0; x < 2; x++) out.push({ level: 0, z, t: 0, x, y });
    out.push({ level: 1, z, t: 0, x: 0, y: 0 });
  }
  return out;
}
const DEPTH_POLL_MS = 500; // the gateway refreshes its view of the queue depth this often

describe('push delivery: budgets, queue notices, load shedding, malformed events', () => {
  let system: TestSystem;
  const viewers: PushViewer[] = [];
  const open = async () => {
    const v = await PushViewer.open(system.gatewayUrl(0));
    viewers.push(v);
    return v;
  };

  beforeAll(async () => {
    system = await TestSystem.start({
      gateways: 1,
      workers: 0,
      datasets: [DATASET],
      env: { MAX_PENDING_PER_VIEWER: '50', QUEUED_NOTICE_DEPTH: '100', MAX_QUEUE_DEPTH: '300' },
    });
  }, 90_000);
  afterAll(async () => {
    for (const v of viewers) v.close();
    await system?.stop();
  });

  it('budget:exceeded for the greedy viewer, tile:queued past the notice depth, load:shed past the max depth; the others are served', async () => {
    // 1. A greedy viewer asks for 75 tiles with a budget of 50; a modest one asks for 10.
    const greedy = await open();
    const modest = await open();
    const greedyAck = await greedy.request({ dataset: DATASET.id, spec: specVariant(1), tiles: [...gridTiles(), ...gridTiles().map((t) => ({ ...t, format: 'png' as const })), ...gridTiles().map((t) => ({ ...t, format: 'webp' as const }))] });
    if (!greedyAck.ok) throw new Error(greedyAck.error.message);
    expect(greedyAck.pending).toHaveLength(50);
    expect(greedyAck.rejected).toHaveLength(25);
    await sleep(100);
    expect(greedy.budget).toEqual([{ limit: 50, inFlight: 50, rejected: 25 }]);
    const modestAck = await modest.request({ dataset: DATASET.id, spec: specVariant(2), tiles: gridTiles(2) });
    if (!modestAck.ok) throw new Error(modestAck.error.message);
    expect([modestAck.pending.length, modestAck.rejected.length]).toEqual([10, 0]);

    // 2. Three more viewers fill the queue past QUEUED_NOTICE_DEPTH (100): 60 + 3 x 50 = 210 waiting.
    for (let i = 0; i < 3; i++) {
      const v = await open();
      const ack = await v.request({ dataset: DATASET.id, spec: specVariant(10 + i), tiles: [...gridTiles(), ...gridTiles().map((t) => ({ ...t, format: 'png' as const }))] });
      expect(ack.ok && ack.pending.length).toBe(50);
    }
    await sleep(DEPTH_POLL_MS * 2);
    const late = await open();
    const lateAck = await late.request({ dataset: DATASET.id, spec: specVariant(3), tiles: gridTiles(1) });
    if (!lateAck.ok) throw new Error(lateAck.error.message);
    expect(lateAck.pending).toHaveLength(5);
    await sleep(100);
    expect(late.queued.map((q) => q.key).sort()).toEqual(lateAck.pending.map((p) => p.key).sort());
    expect(late.queued.every((q) => q.position >= 100)).toBe(true);
    expect(late.shed).toHaveLength(0);

    // 3. Two more push the queue past MAX_QUEUE_DEPTH (300): new renders are refused with load:shed.
    for (let i = 0; i < 2; i++) {
      const v = await open();
      await v.request({ dataset: DATASET.id, spec: specVariant(20 + i), tiles: [...gridTiles(), ...gridTiles().map((t) => ({ ...t, format: 'png' as const }))] });
    }
    await sleep(DEPTH_POLL_MS * 2);
    const shedViewer = await open();
    const shedAck = await shedViewer.request({ dataset: DATASET.id, spec: specVariant(4), tiles: gridTiles(1) });
    if (!shedAck.ok) throw new Error(shedAck.error.message);
    expect([shedAck.pending.length, shedAck.rejected.length]).toEqual([0, 5]);
    await sleep(100);
    expect(shedViewer.shed).toHaveLength(1);
    expect(shedViewer.shed[0]!.rejected).toBe(5);
    expect(shedViewer.shed[0]!.reason).toMatch(/over capacity/);

    // 4. Workers start: the modest viewer, the late one and the greedy one's accepted 50 all arrive.
    system.addWorker();
    system.addWorker();
    await modest.waitFor(modestAck.pending.map((p) => p.key), 60_000);
    await late.waitFor(lateAck.pending.map((p) => p.key), 60_000);
    await greedy.waitFor(greedyAck.pending.map((p) => p.key), 60_000);
    expect(greedy.failed.size + modest.failed.size + late.failed.size).toBe(0);
  }, 120_000);

  it('every malformed event gets a bad_request ack naming the field; the socket stays up and keeps working', async () => {
    const v = await open();
    const spec = specVariant(99);
    const tile = { level: 0, z: 0, t: 0, x: 0, y: 0 };
    const ask = (event: 'tiles:request' | 'viewport' | 'tiles:cancel', payload: unknown) =>
      v.socket.timeout(5000).emitWithAck(event as 'tiles:request', payload) as Promise<{ ok: boolean; error?: { code: string; message: string } }>;
    const cases: Array<[event: 'tiles:request' | 'viewport' | 'tiles:cancel', payload: unknown, field: RegExp]> = [
      ['tiles:request', 42, /\(root\)/],
      ['tiles:request', null, /\(root\)/],
      ['tiles:request', { dataset: DATASET.id, spec }, /tiles/],
      ['tiles:request', { dataset: DATASET.id, spec, tiles: 'all' }, /tiles/],
      ['tiles:request', { dataset: DATASET.id, spec, tiles: [{ ...tile, x: '0' }] }, /tiles\.0\.x/],
      ['tiles:request', { dataset: DATASET.id, spec, tiles: [{ ...tile, z: -1 }] }, /tiles\.0\.z/],
      ['tiles:request', { dataset: DATASET.id, spec, tiles: Array.from({ length: 5000 }, () => tile) }, /tiles/],
      ['tiles:request', { dataset: 7, spec, tiles: [tile] }, /dataset/],
      ['tiles:request', { dataset: DATASET.id, spec: { channels: 'all' }, tiles: [tile] }, /spec/],
      ['tiles:request', { dataset: DATASET.id, spec, tiles: [tile], extra: true }, /extra|unrecognized/i],
      ['viewport', { dataset: DATASET.id, spec, level: 0, t: 0, x0: 0, y0: 0, x1: 1, y1: 1 }, /\bz\b/],
      ['viewport', { dataset: DATASET.id, spec, level: 'top', z: 0, t: 0, x0: 0, y0: 0, x1: 1, y1: 1 }, /level/],
      ['tiles:cancel', { keys: 5 }, /keys/],
      ['tiles:cancel', { keys: Array.from({ length: 10_000 }, () => 'k') }, /keys/],
    ];
    for (const [event, payload, field] of cases) {
      const answer = await ask(event, payload);
      expect({ event, ok: answer.ok, code: answer.error?.code }).toEqual({ event, ok: false, code: 'bad_request' });
      expect(answer.error!.message).toMatch(field);
      expect(v.socket.connected).toBe(true);
    }
    // Not found is an error ack too, from the error table.
    const unknown = await ask('tiles:request', { dataset: 'nope', spec, tiles: [tile] });
    expect([unknown.ok, unknown.error?.code]).toEqual([false, 'dataset_not_found']);
    // No ack at all, or an ack that is not a function: nothing to answer, nothing crashes.
    v.socket.emit('tiles:request' as 'tiles:cancel', { dataset: DATASET.id, spec, tiles: 'x' });
    (v.socket.emit as (...args: unknown[]) => unknown)('tiles:request', { dataset: DATASET.id, spec, tiles: [tile] }, 'not a function');
    (v.socket.emit as (...args: unknown[]) => unknown)('viewport');
    (v.socket.emit as (...args: unknown[]) => unknown)('no:such:event', 1, 2, 3);
    await sleep(200);
    expect(v.socket.connected).toBe(true);
    // The same socket still works, and the gateway process is alive and healthy.
    const ok = await v.request({ dataset: DATASET.id, spec, tiles: [tile] });
    expect(ok.ok).toBe(true);
    expect((await fetch(`${system.gatewayUrl(0)}/healthz`)).status).toBe(200);
    // A payload larger than the gateway's MAX_EVENT_BYTES closes only that socket (Socket.IO's
    // limit), never the process; a fresh socket is served.
    const raw = io(system.gatewayUrl(0), { transports: ['websocket'], forceNew: true, reconnection: false, auth: { protocol: SOCKET_PROTOCOL } });
    await new Promise((r) => raw.once('connect', () => r(undefined)));
    const closed = new Promise((r) => raw.once('disconnect', r));
    raw.emit('tiles:request', { dataset: 'x'.repeat(2_000_000) });
    await closed;
    const after = await open();
    expect((await after.request({ dataset: DATASET.id, spec, tiles: [tile] })).ok).toBe(true);
  }, 60_000);
});

import { createGatewayMetrics, createRegistry } from '@tilefarm/telemetry';
import { ViewerSession, ackError, viewerCounters } from '../src/viewer-session';
import { DATASET, buildCore, type Core } from '../../../packages/tile-requests/test/support/fakes';

// The gateway's adapter over ViewerTiles, on in-memory fakes: payload validation, acks, metrics.

describe('ViewerSession', () => {
  let core: Core;
  let session: ViewerSession;
  let metrics: ReturnType<typeof createGatewayMetrics>;
  const sent: Array<{ event: string; payload: unknown }> = [];

  beforeEach(async () => {
    sent.length = 0;
    core = await buildCore();
    metrics = createGatewayMetrics(createRegistry('gateway'));
    session = new ViewerSession({
      service: core.service,
      counters: viewerCounters(metrics),
      limits: { prefetchZ: 1, prefetchT: 0, maxPending: 50, queuedNoticeDepth: 0, viewportMaxTiles: 1024, viewportIntervalMs: 0 },
      tileUrl: (key) => `/${key}`,
      emit: (event, ...args) => sent.push({ event, payload: args[0] }),
    });
  });
  afterEach(() => core.service.stop());

  it('refuses malformed payloads with bad_request naming the field', async () => {
    await expect(session.request({ dataset: DATASET.id, spec: core.specId, tiles: [{ level: -1, z: 0, t: 0, x: 0, y: 0 }] })).rejects.toMatchObject({ code: 'bad_request', message: expect.stringContaining('tiles.0.level') });
    await expect(session.viewport({ dataset: DATASET.id })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(session.cancel({ keys: 'nope' })).rejects.toMatchObject({ code: 'bad_request' });
    expect(ackError(new Error('secret path /etc'))).toEqual({ ok: false, error: { code: 'internal', message: expect.not.stringContaining('/etc') } });
  });

  it('requests, cancels and closes through the core, counted in the gateway metrics', async () => {
    const ack = await session.request({ dataset: DATASET.id, spec: core.specId, tiles: [{ level: 0, z: 0, t: 0, x: 0, y: 0 }, { level: 0, z: 0, t: 0, x: 1, y: 0 }] });
    expect(ack).toMatchObject({ ok: true, specId: core.specId, ready: [], rejected: [] });
    if (!ack.ok) throw new Error('not ok');
    expect(session.pendingCount).toBe(2);
    await session.cancel({ keys: [ack.pending[0]!.key] });
    expect(core.queue.withdrawn).toEqual([ack.pending[0]!.key]);
    await core.render(ack.pending[1]!.key);
    expect(sent.map((s) => s.event)).toEqual(['tile:ready']);
    await session.close();
    expect((await metrics.tilesRequested.get()).values[0]?.value).toBe(2);
    expect((await metrics.cancelled.get()).values[0]?.value).toBe(1);
    expect((await metrics.notifications.get()).values.find((v) => v.labels.event === 'tile:ready')?.value).toBe(1);
  });
});

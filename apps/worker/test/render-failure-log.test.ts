import { RenderFailureLog, type RenderFailure } from '../src/render-failure-log';

function recorder() {
  const lines: Array<{ fields: Record<string, unknown>; message: string }> = [];
  return { lines, logger: { warn: (fields: Record<string, unknown>, message: string) => lines.push({ fields, message }) } as never };
}

const failure = (n: number, over: Partial<RenderFailure> = {}): RenderFailure => ({ dataset: 'slide', code: 'source_missing', key: `k${n}`, jobId: `j${n}`, err: new Error(`tile ${n}`), ...over });

describe('RenderFailureLog', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('logs the first failure of a kind in full and counts the rest until its window ends', () => {
    const { lines, logger } = recorder();
    const log = new RenderFailureLog(logger, 1000);
    for (let n = 0; n < 500; n++) log.failed(failure(n));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ message: 'render failed', fields: { dataset: 'slide', code: 'source_missing', key: 'k0', jobId: 'j0' } });
    expect(String((lines[0]!.fields.err as Error).message)).toBe('tile 0');
    jest.advanceTimersByTime(1000);
    expect(lines).toHaveLength(2);
    expect(lines[1]!.fields).toEqual({ dataset: 'slide', code: 'source_missing', more: 499, windowS: 1 });
    expect(lines[1]!.message).toContain('499 more times');
    // A new window: the next failure of that kind is logged in full again.
    log.failed(failure(500));
    expect(lines).toHaveLength(3);
    expect(lines[2]!.fields.key).toBe('k500');
  });

  it('keeps a window per dataset and code, and says nothing more for a kind that failed once', () => {
    const { lines, logger } = recorder();
    const log = new RenderFailureLog(logger, 1000);
    log.failed(failure(1));
    log.failed(failure(2, { code: 'render_timeout' }));
    log.failed(failure(3, { dataset: 'other' }));
    log.failed(failure(4, { dataset: undefined }));
    expect(lines.map((l) => l.fields.key)).toEqual(['k1', 'k2', 'k3', 'k4']);
    jest.advanceTimersByTime(5000);
    expect(lines).toHaveLength(4);
  });

  it('says what it still counts when flushed, and leaves no timer behind', () => {
    const { lines, logger } = recorder();
    const log = new RenderFailureLog(logger, 60_000);
    log.failed(failure(1));
    log.failed(failure(2));
    log.flush();
    expect(lines[1]!.fields.more).toBe(1);
    expect(jest.getTimerCount()).toBe(0);
  });
});

import { RenderSpec, canonicalSpecJson, describeZodError, autoWindowTrim } from '@tilefarm/contracts';

describe('RenderSpec', () => {
  it('fills defaults and orders keys so equal specs have equal canonical JSON', () => {
    const a = RenderSpec.parse({ channels: [{ index: 0, color: '#ff0000' }] });
    const b = RenderSpec.parse({ format: 'jpeg', channels: [{ color: '#ff0000', gamma: 1, index: 0 }], composite: 'add' });
    expect(canonicalSpecJson(a)).toBe(canonicalSpecJson(b));
    expect(a.quality).toBe(85);
  });

  it('names every bad field', () => {
    const r = RenderSpec.safeParse({ channels: [{ index: 0, window: [5, 1] }, { label: 'x', formula: 'c0' }], format: 'gif' });
    expect(r.success).toBe(false);
    const text = describeZodError(r.error!);
    expect(text).toContain('channels.0.window');
    expect(text).toContain('exactly one of');
    expect(text).toContain('format');
  });

  it('parses auto windows', () => {
    expect(autoWindowTrim('auto')).toBe(0);
    expect(autoWindowTrim('auto:0.02')).toBe(0.02);
    expect(autoWindowTrim([1, 2])).toBeUndefined();
    expect(RenderSpec.safeParse({ channels: [{ index: 0, window: 'auto:0.7' }] }).success).toBe(false);
  });
});

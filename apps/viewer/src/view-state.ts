import { RenderSpec, type RenderSpecInput } from '@tilefarm/contracts';
import type { ViewPosition } from './deep-zoom-view';

/** Everything a link must reproduce. */
export interface ViewState {
  dataset: string | undefined;
  /** Undefined in a link that does not say: the dataset's middle slice / first time point. */
  z: number | undefined;
  t: number | undefined;
  position: ViewPosition | undefined;
  spec: RenderSpecInput | undefined;
}

function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): string {
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

const num = (v: string | null): number | undefined => (v !== null && v !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined);

const wholeOrUndefined = (v: number | undefined): number | undefined => (v === undefined ? undefined : Math.max(0, Math.floor(v)));

/** Reads the state from a location hash like `#d=demo&z=2&t=0&x=0.5&y=0.4&zoom=1.5&s=<spec>`; bad parts are ignored. */
export function parseViewState(hash: string): ViewState {
  const q = new URLSearchParams(hash.replace(/^#/, ''));
  let spec: RenderSpecInput | undefined;
  const s = q.get('s');
  if (s) {
    try {
      const parsed = RenderSpec.safeParse(JSON.parse(fromBase64Url(s)));
      if (parsed.success) spec = JSON.parse(fromBase64Url(s)) as RenderSpecInput;
    } catch {
      spec = undefined;
    }
  }
  const x = num(q.get('x'));
  const y = num(q.get('y'));
  const zoom = num(q.get('zoom'));
  return {
    dataset: q.get('d') ?? undefined,
    z: wholeOrUndefined(num(q.get('z'))),
    t: wholeOrUndefined(num(q.get('t'))),
    position: x !== undefined && y !== undefined && zoom !== undefined && zoom > 0 ? { x, y, zoom } : undefined,
    spec,
  };
}

export function formatViewState(s: ViewState): string {
  const q = new URLSearchParams();
  if (s.dataset) q.set('d', s.dataset);
  if (s.z !== undefined) q.set('z', String(s.z));
  if (s.t !== undefined) q.set('t', String(s.t));
  if (s.position) {
    q.set('x', s.position.x.toFixed(5));
    q.set('y', s.position.y.toFixed(5));
    q.set('zoom', s.position.zoom.toPrecision(5));
  }
  if (s.spec) q.set('s', toBase64Url(JSON.stringify(s.spec)));
  return `#${q.toString()}`;
}

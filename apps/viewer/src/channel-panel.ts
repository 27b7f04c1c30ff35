import { LUT_NAMES, type ChannelSpec, type DatasetStats, type DatasetSummary, type PlaneStats, type RenderSpecInput } from '@tilefarm/contracts';

type ChannelInput = RenderSpecInput['channels'][number];

/** The default picture of a dataset: every channel in its own colour and window. */
export function defaultSpec(ds: DatasetSummary): RenderSpecInput {
  return {
    v: 1,
    channels: ds.channels.map((c, index) => ({ index, color: c.color, window: [c.window[0], c.window[1]] as [number, number], gamma: 1, invert: false, active: c.active !== false })),
    composite: 'add',
    format: 'jpeg',
    quality: 85,
  };
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

interface ChannelRow {
  root: HTMLElement;
  histogram: HTMLCanvasElement | undefined;
  lo: HTMLInputElement;
  hi: HTMLInputElement;
  error: HTMLElement;
}

/**
 * The channel panel: on/off, colour or LUT, window over the channel's histogram with draggable
 * limits and an "auto" button, gamma, invert; derived channels with a formula; composite mode and Z
 * projection. It edits a RenderSpec and reports each change; errors from the server come back inline.
 */
export class ChannelPanel {
  private spec: RenderSpecInput = { channels: [{ index: 0 }] };
  private dataset: DatasetSummary | undefined;
  private stats: DatasetStats | undefined;
  private plane = { z: 0, t: 0 };
  private rows: ChannelRow[] = [];
  private readonly list: HTMLElement;
  private readonly globalError: HTMLElement;
  private readonly projectionType: HTMLSelectElement;
  private readonly projectionFrom: HTMLInputElement;
  private readonly projectionTo: HTMLInputElement;
  private readonly composite: HTMLSelectElement;
  /** A changed spec; `channel` is the row that changed (for showing its error), if one did. */
  onChange: (spec: RenderSpecInput, channel: number | undefined) => void = () => undefined;

  constructor(private readonly root: HTMLElement) {
    this.list = el('div', { class: 'channels' });
    this.globalError = el('div', { class: 'error spec-error', role: 'alert' });
    this.composite = el('select', { class: 'composite', title: 'How channels combine' }, el('option', { value: 'add' }, 'add'), el('option', { value: 'max' }, 'max'));
    this.composite.addEventListener('change', () => {
      this.spec.composite = this.composite.value as 'add' | 'max';
      this.changed(undefined);
    });
    this.projectionType = el('select', { class: 'projection-type' }, el('option', { value: '' }, 'none'), el('option', { value: 'max' }, 'max'), el('option', { value: 'mean' }, 'mean'));
    this.projectionFrom = el('input', { class: 'projection-from', type: 'number', min: '0', step: '1', value: '0' });
    this.projectionTo = el('input', { class: 'projection-to', type: 'number', min: '0', step: '1', value: '0' });
    const projectionChanged = () => {
      const type = this.projectionType.value;
      const last = Math.max(0, (this.dataset?.sizeZ ?? 1) - 1);
      const a = Math.min(last, Math.max(0, Math.floor(Number(this.projectionFrom.value) || 0)));
      const b = Math.min(last, Math.max(a, Math.floor(Number(this.projectionTo.value) || 0)));
      this.spec.projection = type === 'max' || type === 'mean' ? { type, z: [a, b] } : undefined;
      this.changed(undefined);
    };
    for (const i of [this.projectionType, this.projectionFrom, this.projectionTo]) i.addEventListener('change', projectionChanged);
    const addDerived = el('button', { type: 'button', class: 'add-derived', title: 'Add a channel computed from others, e.g. c0 - 0.5*c1' }, '+ derived channel');
    addDerived.addEventListener('click', () => {
      this.spec.channels.push({ formula: 'c0', color: '#ffffff', window: 'auto', gamma: 1, invert: false, active: false });
      this.render();
    });
    root.append(
      el('h2', {}, 'Channels'),
      this.list,
      addDerived,
      el('div', { class: 'row' }, el('label', {}, 'composite ', this.composite)),
      el('div', { class: 'row projection' }, el('label', {}, 'projection ', this.projectionType), el('label', {}, ' z ', this.projectionFrom), el('label', {}, '–', this.projectionTo)),
      this.globalError,
    );
  }

  /** A new dataset (or a spec from a link): rebuilds the panel. */
  load(dataset: DatasetSummary, spec: RenderSpecInput, stats: DatasetStats | undefined): void {
    this.dataset = dataset;
    this.stats = stats;
    this.spec = structuredClone(spec);
    this.composite.value = this.spec.composite ?? 'add';
    this.projectionType.value = this.spec.projection?.type === 'sum' ? 'max' : (this.spec.projection?.type ?? '');
    this.projectionFrom.value = String(this.spec.projection?.z[0] ?? 0);
    this.projectionTo.value = String(this.spec.projection?.z[1] ?? Math.max(0, dataset.sizeZ - 1));
    this.render();
  }

  /** The plane whose histograms are shown. */
  setPlane(z: number, t: number): void {
    this.plane = { z, t };
    this.rows.forEach((_, i) => this.drawHistogram(i));
  }

  get current(): RenderSpecInput {
    return structuredClone(this.spec);
  }

  showError(channel: number | undefined, message: string | undefined): void {
    for (const r of this.rows) r.error.textContent = '';
    this.globalError.textContent = '';
    if (message === undefined) return;
    const row = channel !== undefined ? this.rows[channel] : undefined;
    (row ? row.error : this.globalError).textContent = message;
  }

  private changed(channel: number | undefined): void {
    this.onChange(this.current, channel);
  }

  private planeStats(c: number): PlaneStats | undefined {
    const planes = this.stats?.planes ?? [];
    return planes.find((p) => p.c === c && p.z === this.plane.z && p.t === this.plane.t) ?? planes.find((p) => p.c === c);
  }

  private render(): void {
    this.list.replaceChildren();
    this.rows = this.spec.channels.map((ch, i) => this.renderChannel(ch, i));
    this.rows.forEach((r, i) => {
      this.list.append(r.root);
      this.drawHistogram(i);
    });
  }

  private renderChannel(ch: ChannelInput, i: number): ChannelRow {
    const ds = this.dataset;
    const isFormula = ch.formula !== undefined;
    const name = isFormula ? 'derived' : (ch.label ?? ds?.channels[ch.index ?? 0]?.label ?? `c${ch.index}`);
    const update = (mutate: (c: ChannelInput) => void) => {
      const target = this.spec.channels[i];
      if (!target) return;
      mutate(target);
      this.changed(i);
    };

    const active = el('input', { type: 'checkbox', class: 'ch-active', title: 'show this channel' });
    active.checked = ch.active !== false;
    active.addEventListener('change', () => update((c) => (c.active = active.checked)));

    const mode = el('select', { class: 'ch-mode', title: 'colour or lookup table' }, el('option', { value: 'color' }, 'colour'), ...LUT_NAMES.map((l) => el('option', { value: l }, l)));
    mode.value = ch.lut ?? 'color';
    const color = el('input', { type: 'color', class: 'ch-color', value: ch.color ?? ds?.channels[ch.index ?? 0]?.color ?? '#ffffff' });
    color.hidden = ch.lut !== undefined;
    mode.addEventListener('change', () => {
      color.hidden = mode.value !== 'color';
      update((c) => {
        if (mode.value === 'color') {
          delete c.lut;
          c.color = color.value;
        } else {
          delete c.color;
          c.lut = mode.value as ChannelSpec['lut'];
        }
      });
    });
    color.addEventListener('input', () => update((c) => ((c.color = color.value), delete c.lut)));

    const win = Array.isArray(ch.window) ? ch.window : undefined;
    const lo = el('input', { type: 'number', class: 'ch-lo', step: 'any', title: 'window low (raw units)', placeholder: 'auto', value: win ? String(win[0]) : '' });
    const hi = el('input', { type: 'number', class: 'ch-hi', step: 'any', title: 'window high (raw units)', placeholder: 'auto', value: win ? String(win[1]) : '' });
    const windowChanged = () => {
      const a = Number(lo.value);
      const b = Number(hi.value);
      if (lo.value === '' && hi.value === '') update((c) => (c.window = 'auto'));
      else if (Number.isFinite(a) && Number.isFinite(b) && lo.value !== '' && hi.value !== '') update((c) => (c.window = [Math.min(a, b), Math.max(a, b)]));
      this.drawHistogram(i);
    };
    lo.addEventListener('change', windowChanged);
    hi.addEventListener('change', windowChanged);
    const auto = el('button', { type: 'button', class: 'ch-auto', title: 'window from the 0.1–99.9 % percentiles of this plane' }, 'auto');
    auto.addEventListener('click', () => {
      const s = isFormula ? undefined : this.planeStats(ch.index ?? 0);
      if (!s) {
        lo.value = hi.value = '';
      } else {
        lo.value = String(s.percentiles['0.001'] ?? s.min);
        hi.value = String(s.percentiles['0.999'] ?? s.max);
      }
      windowChanged();
    });

    const gamma = el('input', { type: 'number', class: 'ch-gamma', min: '0.1', max: '10', step: '0.1', value: String(ch.gamma ?? 1), title: 'gamma' });
    gamma.addEventListener('change', () => {
      const g = Number(gamma.value);
      if (g > 0 && g <= 10) update((c) => (c.gamma = g));
    });
    const invert = el('input', { type: 'checkbox', class: 'ch-invert', title: 'invert' });
    invert.checked = ch.invert === true;
    invert.addEventListener('change', () => update((c) => (c.invert = invert.checked)));

    const error = el('div', { class: 'error ch-error', role: 'alert' });
    const root = el('div', { class: 'channel', 'data-channel': String(i) });
    const header = el('div', { class: 'row' }, el('label', {}, active, ` ${name}`), mode, color);
    if (isFormula) {
      const remove = el('button', { type: 'button', class: 'ch-remove', title: 'remove this derived channel' }, '×');
      remove.addEventListener('click', () => {
        this.spec.channels.splice(i, 1);
        this.render();
        this.changed(undefined);
      });
      header.append(remove);
    }
    root.append(header);
    if (isFormula) {
      const formula = el('input', { type: 'text', class: 'ch-formula', spellcheck: 'false', value: ch.formula ?? '', title: 'e.g. c0 - 0.5*c1, max(c0, c2), ch("GFP") / 2' });
      // Typing a formula is asking to see it: the channel turns on with it.
      formula.addEventListener('change', () => {
        active.checked = true;
        update((c) => {
          c.formula = formula.value;
          c.active = true;
        });
      });
      root.append(el('div', { class: 'row' }, el('label', {}, 'formula ', formula)));
    }
    let histogram: HTMLCanvasElement | undefined;
    if (!isFormula) {
      histogram = el('canvas', { class: 'ch-histogram', width: '256', height: '48', title: 'drag the limits' });
      this.dragLimits(histogram, i, lo, hi, windowChanged);
      root.append(histogram);
    }
    root.append(
      el('div', { class: 'row' }, el('label', {}, 'window ', lo), el('label', {}, '–', hi), auto),
      el('div', { class: 'row' }, el('label', {}, 'gamma ', gamma), el('label', {}, invert, ' invert')),
      error,
    );
    return { root, histogram, lo, hi, error };
  }

  private histogramRange(i: number): { lo: number; hi: number } | undefined {
    const ch = this.spec.channels[i];
    const s = ch?.index !== undefined ? this.planeStats(ch.index) : undefined;
    return s ? { lo: s.histogram.lo, hi: s.histogram.hi } : undefined;
  }

  private dragLimits(canvas: HTMLCanvasElement, i: number, lo: HTMLInputElement, hi: HTMLInputElement, commit: () => void): void {
    let dragging: HTMLInputElement | undefined;
    const valueAt = (e: PointerEvent) => {
      const range = this.histogramRange(i);
      if (!range) return undefined;
      const f = Math.min(1, Math.max(0, (e.clientX - canvas.getBoundingClientRect().left) / canvas.clientWidth));
      return Math.round(range.lo + f * (range.hi - range.lo));
    };
    canvas.addEventListener('pointerdown', (e) => {
      const v = valueAt(e);
      if (v === undefined) return;
      const a = Number(lo.value || 0);
      const b = Number(hi.value || 0);
      dragging = Math.abs(v - a) <= Math.abs(v - b) ? lo : hi;
      canvas.setPointerCapture(e.pointerId);
      dragging.value = String(v);
      this.drawHistogram(i);
    });
    canvas.addEventListener('pointermove', (e) => {
      const v = dragging ? valueAt(e) : undefined;
      if (!dragging || v === undefined) return;
      dragging.value = String(v);
      this.drawHistogram(i);
    });
    const end = () => {
      if (!dragging) return;
      dragging = undefined;
      commit();
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
  }

  private drawHistogram(i: number): void {
    const row = this.rows[i];
    const ch = this.spec.channels[i];
    const canvas = row?.histogram;
    if (!row || !canvas || ch?.index === undefined) return;
    const g = canvas.getContext('2d');
    if (!g) return;
    const { width, height } = canvas;
    g.clearRect(0, 0, width, height);
    const s = this.planeStats(ch.index);
    if (!s) {
      g.fillStyle = '#888';
      g.fillText('no statistics', 4, 12);
      return;
    }
    const counts = s.histogram.counts;
    const peak = Math.log1p(Math.max(1, ...counts));
    g.fillStyle = '#9aa';
    counts.forEach((n, b) => {
      const h = (Math.log1p(n) / peak) * (height - 2);
      g.fillRect((b * width) / counts.length, height - h, Math.max(1, width / counts.length), h);
    });
    const span = s.histogram.hi - s.histogram.lo || 1;
    const xOf = (v: number) => ((v - s.histogram.lo) / span) * width;
    const a = Number(row.lo.value);
    const b = Number(row.hi.value);
    if (row.lo.value !== '' && row.hi.value !== '') {
      g.fillStyle = 'rgba(255,255,255,0.12)';
      g.fillRect(xOf(a), 0, xOf(b) - xOf(a), height);
      g.fillStyle = '#ffd54a';
      g.fillRect(xOf(a) - 1, 0, 2, height);
      g.fillRect(xOf(b) - 1, 0, 2, height);
    }
  }
}

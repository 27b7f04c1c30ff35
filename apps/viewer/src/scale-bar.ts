import type { DatasetSummary } from '@tilefarm/contracts';

/** Metres per unit for the length units OME-XML and NGFF use. */
const UNIT_METRES: Record<string, number> = {
  m: 1,
  meter: 1,
  cm: 1e-2,
  centimeter: 1e-2,
  mm: 1e-3,
  millimeter: 1e-3,
  µm: 1e-6,
  μm: 1e-6,
  um: 1e-6,
  micrometer: 1e-6,
  micron: 1e-6,
  nm: 1e-9,
  nanometer: 1e-9,
};

/** The largest 1, 2 or 5 × 10^k not above `limit` (limit > 0). */
export function niceLength(limit: number): number {
  const p = 10 ** Math.floor(Math.log10(limit));
  for (const m of [5, 2, 1]) if (m * p <= limit) return m * p;
  return p;
}

/** A length in metres as the label shows it: nm below 1 µm, mm from 1 mm, else µm. */
export function formatLength(metres: number): string {
  const [value, unit] = metres >= 1e-3 ? [metres / 1e-3, 'mm'] : metres >= 1e-6 ? [metres / 1e-6, 'µm'] : [metres / 1e-9, 'nm'];
  return `${Number(value.toPrecision(3))} ${unit}`;
}

/** Metres per full-resolution pixel in x, or undefined when the file gives none (or an unknown unit). */
export function metresPerPixel(ds: DatasetSummary): number | undefined {
  const p = ds.physicalSize;
  const unit = p ? UNIT_METRES[p.unit] : undefined;
  return p && unit ? p.x * unit : undefined;
}

/**
 * A scale bar from the physical pixel size: the longest 1-2-5 length that fits in TARGET_PX of
 * screen, re-chosen as the zoom changes; says so plainly when the file has no physical size.
 */
export class ScaleBar {
  private static readonly TARGET_PX = 140;
  private readonly bar: HTMLElement;
  private readonly label: HTMLElement;

  constructor(private readonly root: HTMLElement) {
    this.bar = document.createElement('div');
    this.bar.className = 'scale-bar-line';
    this.label = document.createElement('div');
    this.label.className = 'scale-bar-label';
    root.append(this.label, this.bar);
  }

  /** `scale`: CSS pixels per full-resolution image pixel. */
  update(ds: DatasetSummary | undefined, scale: number | undefined): void {
    const mpp = ds ? metresPerPixel(ds) : undefined;
    if (!ds || !scale || !mpp) {
      this.root.dataset.state = 'none';
      this.label.textContent = ds ? 'no physical size' : '';
      this.bar.style.width = '0px';
      return;
    }
    const metresPerCssPx = mpp / scale;
    const length = niceLength(ScaleBar.TARGET_PX * metresPerCssPx);
    const px = length / metresPerCssPx;
    this.root.dataset.state = 'ok';
    this.root.dataset.metres = String(length);
    this.label.textContent = formatLength(length);
    this.bar.style.width = `${px}px`;
  }
}

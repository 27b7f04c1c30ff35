import type { DType, PixelArray, SourceTile } from '@tilefarm/contracts';
import { allocPixels } from '@tilefarm/datasets';

export type TileSink = (level: number, x: number, y: number, tile: SourceTile) => Promise<void>;

/**
 * Builds the tiles of one channel plane from level `level` down, from rows streamed top to
 * bottom. Each level holds one band of `tileSize` rows of its own width; when the band is full it
 * is cut into tiles, and every even row (every other pixel of it) goes to the next level: plain 2×
 * subsampling, as `subsample2x` and the fixtures' writer do. Memory: tileSize × (w + w/2 + ...)
 * < 2 × tileSize × w samples for the whole cascade.
 */
export class LevelBuilder {
  private readonly band: PixelArray;
  private rowsInBand = 0;
  private bandIndex = 0;
  private rowsSeen = 0;
  private readonly child: LevelBuilder | undefined;

  constructor(
    readonly level: number,
    readonly width: number,
    readonly height: number,
    private readonly tileSize: number,
    private readonly dtype: DType,
    private readonly sink: TileSink,
    /** Levels below this one to compute (0: none). */
    computeBelow: number,
  ) {
    this.band = allocPixels(dtype, tileSize * width);
    this.child = computeBelow > 0 ? new LevelBuilder(level + 1, Math.ceil(width / 2), Math.ceil(height / 2), tileSize, dtype, sink, computeBelow - 1) : undefined;
  }

  /** Appends `rows` rows (row-major, this level's width). */
  async push(data: PixelArray, rows: number): Promise<void> {
    const w = this.width;
    if (this.rowsSeen + rows > this.height) throw new RangeError(`level ${this.level}: ${this.rowsSeen + rows} rows pushed, height ${this.height}`);
    let childRows: PixelArray | undefined;
    let childCount = 0;
    if (this.child) {
      const firstEven = this.rowsSeen % 2 === 0 ? 0 : 1;
      childCount = rows > firstEven ? Math.ceil((rows - firstEven) / 2) : 0;
      childRows = allocPixels(this.dtype, childCount * this.child.width);
      const cw = this.child.width;
      for (let k = 0; k < childCount; k++) {
        const src = (firstEven + 2 * k) * w;
        const dst = k * cw;
        for (let x = 0; x < cw; x++) childRows[dst + x] = data[src + 2 * x]!;
      }
    }
    let r = 0;
    while (r < rows) {
      const n = Math.min(rows - r, this.tileSize - this.rowsInBand);
      this.band.set(data.subarray(r * w, (r + n) * w), this.rowsInBand * w);
      this.rowsInBand += n;
      this.rowsSeen += n;
      r += n;
      if (this.rowsInBand === this.tileSize || this.rowsSeen === this.height) await this.flush();
    }
    if (this.child && childRows && childCount > 0) await this.child.push(childRows, childCount);
  }

  private async flush(): Promise<void> {
    const { tileSize, width } = this;
    const h = this.rowsInBand;
    for (let tx = 0; tx * tileSize < width; tx++) {
      const x0 = tx * tileSize;
      const tw = Math.min(tileSize, width - x0);
      const data = allocPixels(this.dtype, tw * h);
      for (let y = 0; y < h; y++) data.set(this.band.subarray(y * width + x0, y * width + x0 + tw), y * tw);
      await this.sink(this.level, tx, this.bandIndex, { width: tw, height: h, dtype: this.dtype, data });
    }
    this.bandIndex++;
    this.rowsInBand = 0;
  }

  /** Checks every level received all its rows (they flush as their last row arrives). */
  assertComplete(): void {
    if (this.rowsSeen !== this.height) throw new Error(`level ${this.level}: got ${this.rowsSeen} of ${this.height} rows`);
    this.child?.assertComplete();
  }
}

/**
 * Runs tile writes with at most `limit` in flight, so a slow store applies back-pressure to the
 * reader instead of queueing tiles in memory. The first failure is rethrown to the producer.
 */
export class BoundedWrites {
  private inFlight = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly limit: number) {}

  async add(write: () => Promise<void>): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    while (this.inFlight.size >= this.limit) await Promise.race(this.inFlight);
    if (this.failure !== undefined) throw this.failure;
    const p: Promise<void> = write().then(
      () => {
        this.inFlight.delete(p);
      },
      (e: unknown) => {
        this.inFlight.delete(p);
        this.failure ??= e;
      },
    );
    this.inFlight.add(p);
  }

  async drain(): Promise<void> {
    await Promise.all(this.inFlight);
    if (this.failure !== undefined) throw this.failure;
  }
}

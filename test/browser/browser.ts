import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium (`npx playwright install` cannot download browsers on these machines); CHROMIUM_PATH overrides. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_INSTALL = 'apt-get update && apt-get install -y chromium';

export interface RunningBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Launches headless Chromium with a fresh profile. A missing browser FAILS the test with the
 * install command: browser tests never skip silently.
 */
export async function launchChromium(): Promise<RunningBrowser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM_PATH}; the browser tests need it. Install it with: ${CHROMIUM_INSTALL}`);
  }
  // Playwright gives every launch a fresh temporary profile (it refuses --user-data-dir here).
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => undefined);
    },
  };
}

export interface CanvasColours {
  width: number;
  height: number;
  /** Pixels brighter than the black background (max channel > 24). */
  lit: number;
  /** Largest value of each channel over lit pixels. */
  maxR: number;
  maxG: number;
  maxB: number;
  /** Per-channel sums over lit pixels (to compare pictures). */
  sumR: number;
  sumG: number;
  sumB: number;
  /** A coarse fingerprint: mean of each channel in an 8×8 grid of cells. */
  cells: number[];
}

/** Reads the picture on screen back (server picture + GPU layer). */
export async function canvasColours(page: Page): Promise<CanvasColours> {
  return page.evaluate(() => {
    // What the user sees: the server's picture with the GPU layer over it (the viewer's own
    // snapshot); without the viewer's hook, OpenSeadragon's canvas (the largest under #view).
    const hook = (window as unknown as { tilefarm?: { snapshot(): HTMLCanvasElement } }).tilefarm;
    const canvases = [...document.querySelectorAll<HTMLCanvasElement>('#view canvas')];
    const canvas = hook ? hook.snapshot() : canvases.sort((a, b) => b.width * b.height - a.width * a.height)[0];
    if (!canvas) throw new Error('no canvas under #view');
    const g = canvas.getContext('2d', { willReadFrequently: true });
    if (!g) throw new Error('the viewer canvas is not a 2d canvas');
    const { width, height } = canvas;
    const data = g.getImageData(0, 0, width, height).data;
    const out = { width, height, lit: 0, maxR: 0, maxG: 0, maxB: 0, sumR: 0, sumG: 0, sumB: 0, cells: new Array<number>(8 * 8 * 3).fill(0) };
    const cellCounts = new Array<number>(64).fill(0);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        const r = data[i] ?? 0;
        const gg = data[i + 1] ?? 0;
        const b = data[i + 2] ?? 0;
        const cell = Math.min(7, Math.floor((y * 8) / height)) * 8 + Math.min(7, Math.floor((x * 8) / width));
        out.cells[cell * 3] = (out.cells[cell * 3] ?? 0) + r;
        out.cells[cell * 3 + 1] = (out.cells[cell * 3 + 1] ?? 0) + gg;
        out.cells[cell * 3 + 2] = (out.cells[cell * 3 + 2] ?? 0) + b;
        cellCounts[cell] = (cellCounts[cell] ?? 0) + 1;
        if (Math.max(r, gg, b) <= 24) continue;
        out.lit++;
        out.maxR = Math.max(out.maxR, r);
        out.maxG = Math.max(out.maxG, gg);
        out.maxB = Math.max(out.maxB, b);
        out.sumR += r;
        out.sumG += gg;
        out.sumB += b;
      }
    }
    out.cells = out.cells.map((v, i) => v / Math.max(1, cellCounts[Math.floor(i / 3)] ?? 1));
    return out;
  });
}

/** Mean absolute difference between two fingerprints (0..255). */
export function fingerprintDistance(a: CanvasColours, b: CanvasColours): number {
  let sum = 0;
  for (let i = 0; i < a.cells.length; i++) sum += Math.abs((a.cells[i] ?? 0) - (b.cells[i] ?? 0));
  return sum / a.cells.length;
}

/** Files a page server answers: path → [content type, body]. */
export type PageFiles = Record<string, [string, string | Uint8Array]>;

export interface PageServer {
  /** `http://localhost:PORT`: another origin than the API's `127.0.0.1`, so every fetch the page makes is cross-origin (CORS). */
  origin: string;
  close(): Promise<void>;
}

/** Serves a client library's test page from another origin than tilefarm, as a lab's own web app would be. */
export async function servePageFromAnotherOrigin(files: PageFiles): Promise<PageServer> {
  const server = createServer((req, res) => {
    const file = files[(req.url ?? '').split('?')[0]!];
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file[0] }).end(file[1]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://localhost:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

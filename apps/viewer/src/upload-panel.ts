import type { IngestAccepted, IngestStatusBody, UploadStatusBody } from '@tilefarm/contracts';
import { ApiError } from './api-client';

/** Parts in flight at once: enough to keep a connection busy while one part is being stored. */
const PARALLEL_PARTS = 2;
const PART_ATTEMPTS = 4;
const INGEST_POLL_MS = 400;

export type UploadPhase = 'idle' | 'uploading' | 'ingesting' | 'done' | 'failed' | 'cancelled';

async function answer<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
  if (!res.ok) throw new ApiError(res.status, body?.error?.code ?? 'http_error', body?.error?.message ?? `HTTP ${res.status}`);
  return body as T;
}

/** A dataset id from a file name: the id grammar's letters, lower case, at most 64 (e.g. "Cells 3C.ome.tif" → "cells-3c"). */
export function datasetIdFor(fileName: string, taken: ReadonlySet<string>): string {
  const base =
    fileName
      .replace(/\.(?:ome\.)?tiff?$/i, '')
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/^[^a-z0-9]+/, '')
      .replace(/-+$/, '')
      .slice(0, 56) || 'upload';
  // A new upload never replaces an existing dataset by accident: the next free "-2", "-3"...
  let id = base;
  for (let i = 2; taken.has(id); i++) id = `${base}-${i}`;
  return id;
}

/**
 * Upload by drag and drop (or the file button): the file goes to POST /v1/uploads in parts of the
 * server's part size, two at a time, each retried on failure; an interrupted upload of the same
 * file resumes where it stopped (the upload id is kept in localStorage per file, GET lists the
 * parts that arrived). Then the workers ingest it, with progress here; when it is published the
 * viewer opens it. Cancel stops the parts in flight and deletes the upload on the server.
 * State for scripts and tests: `data-upload` (phase) and `data-upload-dataset` on <body>.
 */
export class UploadPanel {
  onDone: (datasetId: string) => void = () => undefined;
  private abort: AbortController | undefined;
  private uploadId: string | undefined;
  private phase: UploadPhase = 'idle';
  private readonly bar: HTMLProgressElement;
  private readonly text: HTMLElement;
  private readonly cancelButton: HTMLButtonElement;

  constructor(
    private readonly box: HTMLElement,
    private readonly apiBase: string,
    private readonly takenIds: () => ReadonlySet<string>,
    /** fetch with the viewer's access token (the API client's). */
    private readonly send: (url: string, init?: RequestInit) => Promise<Response> = (url, init) => fetch(url, init),
  ) {
    this.text = document.createElement('span');
    this.bar = document.createElement('progress');
    this.bar.max = 1;
    this.cancelButton = Object.assign(document.createElement('button'), { type: 'button', textContent: 'cancel', id: 'upload-cancel' });
    this.cancelButton.addEventListener('click', () => void this.cancel());
    box.replaceChildren(this.text, this.bar, this.cancelButton);
    box.hidden = true;
  }

  /** Drops anywhere on `target` upload the first file dropped. */
  acceptDrops(target: HTMLElement): void {
    target.addEventListener('dragover', (e) => {
      if (!e.dataTransfer?.types.includes('Files')) return;
      e.preventDefault();
      document.body.dataset.dragging = 'true';
    });
    target.addEventListener('dragleave', () => delete document.body.dataset.dragging);
    target.addEventListener('drop', (e) => {
      const file = e.dataTransfer?.files[0];
      delete document.body.dataset.dragging;
      if (!file) return;
      e.preventDefault();
      void this.upload(file);
    });
  }

  get busy(): boolean {
    return this.phase === 'uploading' || this.phase === 'ingesting';
  }

  async upload(file: File): Promise<void> {
    if (this.busy) return;
    const abort = (this.abort = new AbortController());
    this.uploadId = undefined;
    for (const k of ['uploadId', 'uploadDataset', 'uploadProgress'] as const) delete document.body.dataset[k];
    this.setPhase('uploading', `uploading ${file.name}…`, 0);
    try {
      const status = await this.startOrResume(file, abort.signal);
      this.uploadId = status.uploadId;
      document.body.dataset.uploadDataset = status.dataset;
      document.body.dataset.uploadId = status.uploadId;
      await this.sendParts(file, status, abort.signal);
      const accepted = await answer<IngestAccepted>(await this.send(`${this.apiBase}/v1/uploads/${status.uploadId}/complete`, { method: 'POST', signal: abort.signal }));
      localStorage.removeItem(this.resumeKey(file));
      this.setPhase('ingesting', `ingesting ${status.dataset}…`, 0);
      const done = await this.watchIngest(accepted, abort.signal);
      if (done.state !== 'completed') throw new Error(done.error?.message ?? 'the ingest failed');
      this.setPhase('done', `${status.dataset} is ready`, 1);
      setTimeout(() => this.phase === 'done' && (this.box.hidden = true), 4000);
      this.onDone(status.dataset);
    } catch (e) {
      if (abort.signal.aborted) return; // cancel() reports
      this.setPhase('failed', `upload failed: ${e instanceof Error ? e.message : String(e)}`, undefined);
      // A refused upload (not a lost connection) cannot be resumed: remove what arrived.
      if (e instanceof ApiError && e.status < 500 && this.uploadId) await this.remove(this.uploadId);
    }
  }

  /** Stops the parts in flight, then removes everything of the upload on the server. */
  async cancel(): Promise<void> {
    if (!this.busy || !this.abort) return;
    const id = this.uploadId;
    const ingesting = this.phase === 'ingesting';
    this.abort.abort();
    await this.inFlight;
    if (id && !ingesting) await this.remove(id);
    this.setPhase('cancelled', ingesting ? 'stopped watching; the ingest goes on' : 'upload cancelled', undefined);
  }

  private inFlight: Promise<unknown> = Promise.resolve();

  private async remove(uploadId: string): Promise<void> {
    await this.send(`${this.apiBase}/v1/uploads/${uploadId}`, { method: 'DELETE' }).catch(() => undefined);
    for (const key of Object.keys(localStorage)) if (localStorage.getItem(key) === uploadId) localStorage.removeItem(key);
  }

  private resumeKey(file: File): string {
    return `tilefarm-upload:${file.name}:${file.size}:${file.lastModified}`;
  }

  private async startOrResume(file: File, signal: AbortSignal): Promise<UploadStatusBody> {
    const kept = localStorage.getItem(this.resumeKey(file));
    if (kept) {
      const res = await this.send(`${this.apiBase}/v1/uploads/${encodeURIComponent(kept)}`, { signal });
      if (res.ok) {
        const status = (await res.json()) as UploadStatusBody & { completed?: boolean };
        if (!status.completed && status.size === file.size) return status;
      }
      localStorage.removeItem(this.resumeKey(file));
    }
    const id = datasetIdFor(file.name, this.takenIds());
    const res = await this.send(`${this.apiBase}/v1/uploads`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, filename: file.name, size: file.size }), signal });
    const status = await answer<UploadStatusBody>(res);
    localStorage.setItem(this.resumeKey(file), status.uploadId);
    return status;
  }

  private async sendParts(file: File, status: UploadStatusBody, signal: AbortSignal): Promise<void> {
    const have = new Set(status.received);
    const todo = Array.from({ length: status.parts }, (_, i) => i + 1).filter((n) => !have.has(n));
    let sent = have.size === 0 ? 0 : [...have].reduce((a, n) => a + Math.min(status.partSize, file.size - (n - 1) * status.partSize), 0);
    this.progress(sent / file.size, `uploading ${file.name}: `, sent, file.size);
    const sendOne = async (n: number) => {
      const body = file.slice((n - 1) * status.partSize, Math.min(file.size, n * status.partSize));
      for (let attempt = 1; ; attempt++) {
        try {
          await answer(await this.send(`${this.apiBase}/v1/uploads/${status.uploadId}/parts/${n}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body, signal }));
          break;
        } catch (e) {
          // Refusals are final; lost connections and 5xx are tried again, a little later each time.
          if (signal.aborted || (e instanceof ApiError && e.status < 500) || attempt >= PART_ATTEMPTS) throw e;
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
      sent += body.size;
      this.progress(sent / file.size, `uploading ${file.name}: `, sent, file.size);
    };
    const queue = [...todo];
    const lanes = Array.from({ length: Math.min(PARALLEL_PARTS, queue.length) }, async () => {
      for (let n = queue.shift(); n !== undefined; n = queue.shift()) await sendOne(n);
    });
    const all = Promise.all(lanes);
    this.inFlight = all.catch(() => undefined);
    await all;
  }

  private async watchIngest(accepted: IngestAccepted, signal: AbortSignal): Promise<IngestStatusBody> {
    for (;;) {
      const status = await answer<IngestStatusBody>(await this.send(`${this.apiBase}${accepted.statusUrl}`, { signal, cache: 'no-store' }));
      if (status.state === 'completed' || status.state === 'failed') return status;
      const fraction = status.total > 0 ? status.done / status.total : 0;
      this.progress(fraction, `ingesting ${accepted.dataset} (${status.state}): `, undefined, undefined);
      await new Promise((r) => setTimeout(r, INGEST_POLL_MS));
    }
  }

  private progress(fraction: number, label: string, done: number | undefined, total: number | undefined): void {
    const mb = (n: number) => (n / 2 ** 20).toFixed(1);
    this.text.textContent = `${label}${Math.round(fraction * 100)} %${done !== undefined && total !== undefined ? ` (${mb(done)} of ${mb(total)} MB)` : ''}`;
    this.bar.value = fraction;
    document.body.dataset.uploadProgress = fraction.toFixed(3);
  }

  private setPhase(phase: UploadPhase, text: string, fraction: number | undefined): void {
    this.phase = phase;
    this.box.hidden = false;
    this.box.dataset.phase = phase;
    this.text.textContent = text;
    if (fraction === undefined) this.bar.removeAttribute('value');
    else this.bar.value = fraction;
    this.bar.hidden = phase === 'failed' || phase === 'cancelled';
    this.cancelButton.hidden = !this.busy;
    document.body.dataset.upload = phase;
  }
}

import type { DatasetStats, DatasetSummary, RenderSpecInput, SavedSettings, TileUrlsSigned, ZarrUrlsSigned } from '@tilefarm/contracts';
import { AccessToken } from './access-token';

/** An error answer of the API: `{error: {code, message}}` from the one error table. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

async function answer<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
  if (!res.ok) throw new ApiError(res.status, body?.error?.code ?? 'http_error', body?.error?.message ?? `HTTP ${res.status}`);
  return body as T;
}

/** Answers that say "not now" rather than "no": the same request may well succeed a moment later. */
const TRANSIENT_STATUS = new Set([502, 503, 504]);
/** Pauses before each further attempt of a request that is safe to repeat. */
const RETRY_DELAYS_MS = [250, 750, 2000];

/** The HTTP API as the viewer uses it. */
export class ApiClient {
  private readonly specIds = new Map<string, string>();

  constructor(
    readonly base: string,
    readonly token: AccessToken = new AccessToken(undefined),
  ) {}

  /** fetch with the access token as a Bearer header (every call to the API goes through here). */
  fetch(url: string, init: RequestInit = {}): Promise<Response> {
    return fetch(url, { ...init, headers: this.token.headers(init.headers as Record<string, string> | undefined) });
  }

  /**
   * `fetch` for requests that are safe to repeat (reads, and registrations keyed by their content):
   * asked again, a few times, after a network error (a keep-alive connection the server had just
   * closed) or a transient answer (502/503/504). Without this one hiccup while a link opens made the
   * viewer give up on the link's spec and show the dataset's default look.
   */
  async fetchRepeatable(url: string, init: RequestInit = {}): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= RETRY_DELAYS_MS.length;
      try {
        const res = await this.fetch(url, init);
        if (last || !TRANSIENT_STATUS.has(res.status)) return res;
        await res.body?.cancel();
      } catch (e) {
        // fetch rejects with a TypeError when no answer came at all; an abort is not retried.
        if (last || !(e instanceof TypeError)) throw e;
      }
      await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt]));
    }
  }

  /** The gateway's URL: configured on the server, else this page's host at the gateway port the server names. */
  async gatewayUrl(page: { protocol: string; hostname: string }): Promise<string> {
    let body: { gatewayUrl?: string; gatewayPort?: number } = {};
    try {
      body = await answer<typeof body>(await this.fetch(`${this.base}/v1/config`));
    } catch {
      // an older API, or none: the default port
    }
    return body.gatewayUrl ?? `${page.protocol}//${page.hostname}:${body.gatewayPort ?? 8081}`;
  }

  async datasets(): Promise<DatasetSummary[]> {
    return (await answer<{ datasets: DatasetSummary[] }>(await this.fetchRepeatable(`${this.base}/v1/datasets`))).datasets;
  }

  async stats(dataset: string): Promise<DatasetStats> {
    return answer<DatasetStats>(await this.fetchRepeatable(`${this.base}/v1/datasets/${encodeURIComponent(dataset)}/stats`));
  }

  /** Root URL of the dataset's raw-pixel OME-Zarr view (`GET /zarr/{id}.zarr/...`, the API's). */
  bareZarrRoot(dataset: string): string {
    return `${this.base}/zarr/${encodeURIComponent(dataset)}.zarr`;
  }

  /**
   * The root the raw-pixel reader uses. With a token: signed by POST /v1/zarr-urls (its `?sig=&exp=`
   * is carried to every key; with signing off it answers the bare root, given `access_token=` here).
   * Without a token, or that route missing or refusing: the bare root (plus the token if held).
   */
  async zarrRoot(dataset: string): Promise<string> {
    // Without a token there is nothing to sign for (the route refuses): no request at all.
    if (!this.token.value) return this.bareZarrRoot(dataset);
    try {
      const res = await this.fetch(`${this.base}/v1/zarr-urls`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ datasets: [dataset] }) });
      const url = (await answer<ZarrUrlsSigned>(res)).urls[0];
      if (url) return this.token.query(url.startsWith('/') ? `${this.base}${url}` : url);
    } catch {
      // an API without the raw-pixel view's signing route (or a refusal): the bare root below
    }
    return this.token.query(this.bareZarrRoot(dataset));
  }

  /**
   * A URL for an <img> of a tile the viewer builds itself (`/v1/tiles/...` path): signed by POST
   * /v1/tile-urls when the server signs tile URLs, else with `access_token=` when a token is held.
   */
  async tileImageUrl(path: string): Promise<string> {
    if (this.token.value) {
      try {
        const res = await this.fetch(`${this.base}/v1/tile-urls`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ paths: [path] }) });
        const url = (await answer<TileUrlsSigned>(res)).urls[0];
        if (url) return this.token.query(url.startsWith('/') ? `${this.base}${url}` : url);
      } catch {
        // no signing route (or refused): the token in the query below
      }
    }
    return this.token.query(`${this.base}${path}`);
  }

  /** Render settings saved on the server for a dataset ("default" first, if the dataset has one). */
  async settings(dataset: string): Promise<SavedSettings[]> {
    return (await answer<{ settings: SavedSettings[] }>(await this.fetchRepeatable(`${this.base}/v1/datasets/${encodeURIComponent(dataset)}/settings`))).settings;
  }

  async saveSettings(dataset: string, name: string, spec: RenderSpecInput): Promise<SavedSettings> {
    const res = await this.fetch(`${this.base}/v1/datasets/${encodeURIComponent(dataset)}/settings/${encodeURIComponent(name)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ spec }),
    });
    return answer<SavedSettings>(res);
  }

  /** Registers a spec (POST /v1/specs, keyed by its content: safe to repeat) and returns its id; equal specs are asked once. */
  async specId(spec: RenderSpecInput): Promise<string> {
    const text = JSON.stringify(spec);
    const known = this.specIds.get(text);
    if (known) return known;
    const res = await this.fetchRepeatable(`${this.base}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
    const { id } = await answer<{ id: string }>(res);
    this.specIds.set(text, id);
    return id;
  }
}

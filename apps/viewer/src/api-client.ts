import type { DatasetStats, DatasetSummary, RenderSpecInput, SavedSettings } from '@tilefarm/contracts';

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

/** The HTTP API as the viewer uses it. */
export class ApiClient {
  private readonly specIds = new Map<string, string>();

  constructor(readonly base: string) {}

  /** The gateway's URL: configured on the server, else this page's host at the gateway port the server names. */
  async gatewayUrl(page: { protocol: string; hostname: string }): Promise<string> {
    let body: { gatewayUrl?: string; gatewayPort?: number } = {};
    try {
      body = await answer<typeof body>(await fetch(`${this.base}/v1/config`));
    } catch {
      // an older API, or none: the default port
    }
    return body.gatewayUrl ?? `${page.protocol}//${page.hostname}:${body.gatewayPort ?? 8081}`;
  }

  async datasets(): Promise<DatasetSummary[]> {
    return (await answer<{ datasets: DatasetSummary[] }>(await fetch(`${this.base}/v1/datasets`))).datasets;
  }

  async stats(dataset: string): Promise<DatasetStats> {
    return answer<DatasetStats>(await fetch(`${this.base}/v1/datasets/${encodeURIComponent(dataset)}/stats`));
  }

  /** Root URL of the dataset's raw-pixel OME-Zarr view (`GET /zarr/{id}.zarr/...`, the API's). */
  zarrRoot(dataset: string): string {
    return `${this.base}/zarr/${encodeURIComponent(dataset)}.zarr`;
  }

  /** Render settings saved on the server for a dataset ("default" first, if the dataset has one). */
  async settings(dataset: string): Promise<SavedSettings[]> {
    return (await answer<{ settings: SavedSettings[] }>(await fetch(`${this.base}/v1/datasets/${encodeURIComponent(dataset)}/settings`))).settings;
  }

  async saveSettings(dataset: string, name: string, spec: RenderSpecInput): Promise<SavedSettings> {
    const res = await fetch(`${this.base}/v1/datasets/${encodeURIComponent(dataset)}/settings/${encodeURIComponent(name)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ spec }),
    });
    return answer<SavedSettings>(res);
  }

  /** Registers a spec (POST /v1/specs) and returns its id; equal specs are asked once. */
  async specId(spec: RenderSpecInput): Promise<string> {
    const text = JSON.stringify(spec);
    const known = this.specIds.get(text);
    if (known) return known;
    const res = await fetch(`${this.base}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
    const { id } = await answer<{ id: string }>(res);
    this.specIds.set(text, id);
    return id;
  }
}

import { Router, type Response } from 'express';
import {
  DEFAULT_SETTINGS_NAME,
  SETTINGS_LIMITS,
  SaveSettingsBody,
  SavedSettings,
  SettingsName,
  TilefarmError,
  describeZodError,
  type DatasetManifest,
} from '@tilefarm/contracts';
import type { DatasetCatalog } from '@tilefarm/datasets';
import type { ObjectStore } from '@tilefarm/storage';
import { mayWrite, type TilePlanner } from '@tilefarm/tile-requests';
import { principalOf } from '../access';

/** One object per saved setting, so two saves never overwrite each other's list. Kept across versions. */
function settingsPrefix(id: string): string {
  return `settings/${id}/`;
}
function settingsKey(id: string, name: string): string {
  return `${settingsPrefix(id)}${Buffer.from(name, 'utf8').toString('hex')}.json`;
}

/**
 * Saving or deleting changes what everyone who opens the dataset sees (`default` opens it), so it
 * is a write: a tenant's datasets by that tenant, public ones by the operator (or anyone in an open
 * system), as for ingest and delete. Reading follows the dataset's visibility (access.ts).
 */
function checkWriter(res: Response, m: DatasetManifest): void {
  if (!mayWrite(principalOf(res), m.tenant ?? 'public')) throw new TilefarmError('forbidden', "a public dataset's settings are saved with the operator token");
}

function nameOf(raw: unknown): string {
  const parsed = SettingsName.safeParse(raw);
  if (!parsed.success) throw new TilefarmError('bad_request', `name: ${describeZodError(parsed.error)}`);
  return parsed.data;
}

/**
 * Saved render settings of a dataset: list, save (validated against the dataset like a tile
 * request), delete. Tenant checks happen before (access.ts: the path names the dataset).
 */
export function renderSettingsRoutes(catalog: DatasetCatalog, store: ObjectStore, planner: Pick<TilePlanner, 'checkSpec'>): Router {
  const router = Router();

  router.get('/v1/datasets/:id/settings', async (req, res) => {
    const m = await catalog.get(String(req.params.id));
    const keys: string[] = [];
    for await (const key of store.list(settingsPrefix(m.id))) if (keys.length < SETTINGS_LIMITS.maxPerDataset) keys.push(key);
    const settings: SavedSettings[] = [];
    for (const key of keys) {
      const body = await store.get(key);
      const parsed = body ? SavedSettings.safeParse(JSON.parse(body.toString('utf8'))) : undefined;
      if (parsed?.success) settings.push(parsed.data);
    }
    settings.sort((a, b) => (a.name === DEFAULT_SETTINGS_NAME ? -1 : b.name === DEFAULT_SETTINGS_NAME ? 1 : a.name.localeCompare(b.name)));
    res.setHeader('Cache-Control', 'no-store');
    res.json({ settings });
  });

  router.put('/v1/datasets/:id/settings/:name', async (req, res) => {
    const m = await catalog.get(String(req.params.id));
    checkWriter(res, m);
    const name = nameOf(req.params.name);
    const body = SaveSettingsBody.safeParse(req.body);
    if (!body.success) throw new TilefarmError('invalid_spec', describeZodError(body.error));
    // Over MAX_RENDER_COST on this dataset: refused now (400 spec_too_expensive), not at every tile of everyone who opens it.
    planner.checkSpec(body.data.spec, m);
    const key = settingsKey(m.id, name);
    if (!(await store.head(key))) {
      let count = 0;
      for await (const _ of store.list(settingsPrefix(m.id))) count++;
      if (count >= SETTINGS_LIMITS.maxPerDataset) throw new TilefarmError('conflict', `a dataset keeps at most ${SETTINGS_LIMITS.maxPerDataset} saved settings; delete one first`);
    }
    const saved: SavedSettings = { name, spec: body.data.spec, savedAt: new Date().toISOString() };
    await store.put(key, Buffer.from(JSON.stringify(saved)), { contentType: 'application/json' });
    res.status(200).json(saved);
  });

  router.delete('/v1/datasets/:id/settings/:name', async (req, res) => {
    const m = await catalog.get(String(req.params.id));
    checkWriter(res, m);
    await store.delete(settingsKey(m.id, nameOf(req.params.name)));
    res.status(204).end();
  });

  return router;
}

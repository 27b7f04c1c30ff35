import { z } from 'zod';
import { RenderSpec } from './render-spec';

/**
 * Named render settings saved on the server for a dataset (`/v1/datasets/{id}/settings/{name}`).
 * The name "default" is the dataset's own default look (what the viewer opens with); any token
 * of the dataset's tenant may change it.
 */
export const SETTINGS_LIMITS = { maxPerDataset: 100 } as const;
export const DEFAULT_SETTINGS_NAME = 'default';

export const SettingsName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$/, 'a name is 1-64 letters, digits, spaces, "_", "." or "-", starting with a letter or digit');

export const SaveSettingsBody = z.object({ spec: RenderSpec }).strict();
export type SaveSettingsBody = z.infer<typeof SaveSettingsBody>;

export const SavedSettings = z.object({ name: SettingsName, spec: RenderSpec, savedAt: z.string() });
export type SavedSettings = z.infer<typeof SavedSettings>;

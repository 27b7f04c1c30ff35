import type { DatasetSummary } from '@tilefarm/contracts';
import type { ApiClient } from './api-client';
import { defaultSpec } from './channel-panel';

/**
 * The dataset gallery: one card per dataset with a server-rendered thumbnail (the coarsest pyramid
 * level, middle slice, in the dataset's default look), name, size, channels and state.
 */
export class DatasetGallery {
  onOpen: (id: string) => void = () => undefined;

  constructor(
    private readonly root: HTMLElement,
    private readonly api: ApiClient,
  ) {
    root.addEventListener('click', (e) => {
      if (e.target === root) this.hide();
    });
  }

  get shown(): boolean {
    return !this.root.hidden;
  }

  hide(): void {
    this.root.hidden = true;
  }

  async show(datasets: DatasetSummary[]): Promise<void> {
    this.root.hidden = false;
    const grid = document.createElement('div');
    grid.className = 'gallery-grid';
    this.root.replaceChildren(grid);
    for (const ds of datasets) {
      const card = document.createElement('button');
      card.type = 'button';
      card.className = 'gallery-card';
      card.dataset.dataset = ds.id;
      const img = document.createElement('img');
      img.alt = `thumbnail of ${ds.name ?? ds.id}`;
      const title = document.createElement('strong');
      title.textContent = ds.name ?? ds.id;
      const facts = document.createElement('span');
      const px = ds.physicalSize ? `, ${ds.physicalSize.x} ${ds.physicalSize.unit}/px` : '';
      facts.textContent = `${ds.width}×${ds.height}, ${ds.sizeZ} z, ${ds.sizeT} t, ${ds.dtype}${px}`;
      const channels = document.createElement('span');
      channels.textContent = ds.channels.map((c) => c.label).join(' · ');
      const state = document.createElement('span');
      state.className = 'gallery-state';
      state.textContent = `ready (version ${ds.version})`;
      card.append(img, title, facts, channels, state);
      card.addEventListener('click', () => {
        this.hide();
        this.onOpen(ds.id);
      });
      grid.append(card);
      void this.thumbnail(ds).then((url) => (img.src = url), () => (img.alt = 'no thumbnail'));
    }
  }

  private async thumbnail(ds: DatasetSummary): Promise<string> {
    const spec = await this.api.specId({ ...defaultSpec(ds), format: 'jpeg' });
    const z = Math.floor(ds.sizeZ / 2);
    return this.api.tileImageUrl(`/v1/tiles/${encodeURIComponent(ds.id)}/${spec}/${ds.levels - 1}/${z}/0/0/0.jpeg`);
  }
}

import type { DatasetStats, DatasetSummary, ImageFormat, RenderSpecInput, SavedSettings } from '@tilefarm/contracts';
import { AccessToken } from './access-token';
import { ApiClient, ApiError } from './api-client';
import { ChannelPanel, defaultSpec } from './channel-panel';
import { DatasetGallery } from './dataset-gallery';
import { DeepZoomView } from './deep-zoom-view';
import { HybridView } from './hybrid-view';
import { ScaleBar, metresPerPixel } from './scale-bar';
import { WebglCompositor } from './webgl-compositor';
import { SocketTileLoader } from './socket-tile-loader';
import { StatusStrip } from './status-strip';
import { RegionExport } from './region-export';
import { UploadPanel } from './upload-panel';
import { formatViewState, parseViewState, type ViewState } from './view-state';

/** How long the input must be quiet before the server's picture follows a change drawn on the GPU. */
const SERVER_FOLLOW_MS = 1000;

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} is missing from index.html`);
  return e as T;
}

/** Composition root of the viewer: builds every part and wires them; the URL hash holds the view. */
async function main(): Promise<void> {
  const apiBase = location.origin;
  // Before anything reads the fragment: the token leaves the visible URL (and every link written later).
  const token = AccessToken.fromPage();
  const api = new ApiClient(apiBase, token);
  const gatewayUrl = await api.gatewayUrl(location);
  const loader = new SocketTileLoader(gatewayUrl, apiBase, token);
  const view = new DeepZoomView(byId('view'), loader, apiBase, token);
  const panel = new ChannelPanel(byId('panel'));
  // `?render=server` keeps the picture server-rendered (benchmarks compare the two modes).
  const serverOnly = new URLSearchParams(location.search).get('render') === 'server';
  const hybrid = new HybridView(view, serverOnly ? undefined : WebglCompositor.create());
  const scaleBar = new ScaleBar(byId('scalebar'));
  const readout = byId('readout');
  const modeLabel = byId('mode');
  let following = false;
  let followSeq = 0;
  const status = new StatusStrip(byId('status'), byId('debug'), () => ({ counts: loader.snapshot, timings: loader.timings, ...view.state, following }));
  loader.onChange = () => status.update();

  const picker = byId<HTMLSelectElement>('dataset');
  const zSlider = byId<HTMLInputElement>('z');
  const zLabel = byId('z-label');
  const tSlider = byId<HTMLInputElement>('t');
  const tLabel = byId('t-label');
  const tRow = byId('t-row');

  let datasets: DatasetSummary[] = [];
  let dataset: DatasetSummary | undefined;
  let stats: DatasetStats | undefined;
  let spec: RenderSpecInput | undefined;
  let specId: string | undefined;
  let z = 0;
  let t = 0;
  let specRequest = 0;

  const currentState = (): ViewState => ({ dataset: dataset?.id, z, t, position: dataset ? view.position : undefined, spec });
  let urlTimer: ReturnType<typeof setTimeout> | undefined;
  // While a link is being opened the URL already says where the view is going: the half-opened
  // state (old spec, no spec yet, the last dataset's animation) must not overwrite it, or a reload
  // in that moment opens something else than the link.
  // Likewise a navigation that changed the hash after a write was scheduled (its hashchange event
  // may not have run yet) wins over the write.
  let openingLink = 0;
  const writeUrl = () => {
    if (openingLink > 0 || urlTimer !== undefined) return;
    const hashWhenScheduled = location.hash;
    urlTimer = setTimeout(() => {
      urlTimer = undefined;
      if (openingLink === 0 && location.hash === hashWhenScheduled) history.replaceState(null, '', formatViewState(currentState()));
    }, 200);
  };
  const openLink = async (link: ViewState, id: string) => {
    clearTimeout(urlTimer);
    urlTimer = undefined;
    openingLink++;
    try {
      await openDataset(id, link);
    } finally {
      openingLink--;
    }
  };

  const serverShows = (pz: number, pt: number) => new RegExp(`/${pz}/${pt}/[a-z]+$`).test(view.state.shown ?? '');
  hybrid.serverShows = serverShows;
  hybrid.onState = () => {
    const h = hybrid.state;
    const body = document.body.dataset;
    body.renderMode = h.mode;
    body.gpuDrawn = String(h.drawn);
    body.gpuVisible = String(h.visible);
    body.gpuDraws = String(hybrid.draws);
    body.gpuPending = String(h.chunksPending);
    body.gpuComplete = String(h.mode === 'gpu' && h.visible > 0 && h.drawn === h.visible);
    const text = h.mode === 'gpu' ? `GPU from raw pixels ${h.drawn}/${h.visible}` : `server-rendered (${h.reason})`;
    if (modeLabel.textContent !== text) {
      modeLabel.textContent = text;
      modeLabel.title = text;
    }
    modeLabel.dataset.mode = h.mode;
    scaleBar.update(dataset, view.geometry()?.scale);
  };

  const show = (position?: ViewState['position']) => {
    if (!dataset || !specId) return;
    hybrid.setPlane(z, t);
    const format: ImageFormat = spec?.format ?? 'jpeg';
    view.show({ dataset, specId, z, t, format }, position);
    panel.setPlane(z, t);
    void updateReadout();
    writeUrl();
  };

  /**
   * Registers the spec; on success it becomes the picture, on error the old picture stays and the
   * error shows. Says which happened: "superseded" when a newer spec was asked for meanwhile (it
   * neither applied nor failed: the newer one decides).
   */
  const applySpec = async (next: RenderSpecInput, channel: number | undefined, position?: ViewState['position']): Promise<{ outcome: 'applied' | 'superseded' } | { outcome: 'failed'; message: string }> => {
    const mine = ++specRequest;
    try {
      const id = await api.specId(next);
      if (mine !== specRequest) return { outcome: 'superseded' };
      panel.showError(undefined, undefined);
      spec = next;
      specId = id;
      hybrid.setSpec(next);
      show(position);
      return { outcome: 'applied' };
    } catch (e) {
      if (mine !== specRequest) return { outcome: 'superseded' };
      const message = e instanceof ApiError ? e.message : String(e);
      panel.showError(channel, message);
      return { outcome: 'failed', message };
    }
  };
  let specTimer: ReturnType<typeof setTimeout> | undefined;
  panel.onChange = (next, channel) => {
    clearTimeout(specTimer);
    if (hybrid.wouldDraw(next)) {
      // Drawn here and now from raw pixels; the server's picture (and the spec id for links and
      // the cache) follows once the input has been quiet for a while.
      hybrid.setSpec(next);
      spec = next;
      specRequest++;
      panel.showError(undefined, undefined);
      writeUrl();
      following = true;
      status.update();
      const mine = ++followSeq;
      specTimer = setTimeout(() => {
        // Busy until the new server layer is asked for (then its loading keeps the page busy).
        void applySpec(next, channel).finally(() => {
          if (mine !== followSeq) return;
          following = false;
          status.update();
        });
      }, SERVER_FOLLOW_MS);
      return;
    }
    following = false;
    followSeq++;
    specTimer = setTimeout(() => void applySpec(next, channel), 120);
  };

  const setZ = (next: number) => {
    if (!dataset) return;
    const clamped = Math.min(dataset.sizeZ - 1, Math.max(0, Math.round(next)));
    zSlider.value = String(clamped);
    zLabel.textContent = `z ${clamped + 1}/${dataset.sizeZ}`;
    if (clamped === z) return;
    z = clamped;
    show();
  };
  const setT = (next: number) => {
    if (!dataset) return;
    const clamped = Math.min(dataset.sizeT - 1, Math.max(0, Math.round(next)));
    tSlider.value = String(clamped);
    tLabel.textContent = `t ${clamped + 1}/${dataset.sizeT}`;
    if (clamped === t) return;
    t = clamped;
    show();
  };

  // Opens overlap (a link opened while the last dataset is still loading): the latest one wins, an
  // older one stops at its next step instead of putting its dataset or colours back.
  let openSeq = 0;
  const openDataset = async (id: string, link: ViewState | undefined) => {
    const mine = ++openSeq;
    const ds = datasets.find((d) => d.id === id) ?? datasets[0];
    if (!ds) return;
    dataset = ds;
    picker.value = ds.id;
    const dsStats = await api.stats(ds.id).catch(() => undefined);
    const zarrRoot = await api.zarrRoot(ds.id);
    if (mine !== openSeq) return;
    stats = dsStats;
    hybrid.open(ds, stats, zarrRoot);
    z = Math.min(ds.sizeZ - 1, link?.z ?? Math.floor(ds.sizeZ / 2));
    t = Math.min(ds.sizeT - 1, link?.t ?? 0);
    zSlider.max = String(ds.sizeZ - 1);
    zSlider.value = String(z);
    zLabel.textContent = `z ${z + 1}/${ds.sizeZ}`;
    zSlider.disabled = ds.sizeZ < 2;
    tRow.hidden = ds.sizeT < 2;
    tSlider.max = String(ds.sizeT - 1);
    tSlider.value = String(t);
    tLabel.textContent = `t ${t + 1}/${ds.sizeT}`;
    const saved = await loadSaved(ds.id);
    if (mine !== openSeq) return;
    const start = link?.spec ?? saved.find((x) => x.name === 'default')?.spec ?? defaultSpec(ds);
    panel.load(ds, start, stats);
    specId = undefined;
    const applied = await applySpec(start, undefined, link?.position);
    if (mine !== openSeq) return;
    if (applied.outcome === 'failed' && link?.spec) {
      // A link with a spec the server refuses (or could not register, asked several times): the
      // dataset's own colours, and the reason stays on screen. A spec superseded meanwhile (the
      // user already changed it) is not a failure: nothing is put back.
      panel.load(ds, defaultSpec(ds), stats);
      const fallback = await applySpec(defaultSpec(ds), undefined, link.position);
      if (fallback.outcome === 'applied') panel.showError(undefined, `the link's render settings could not be used (${applied.message}); showing the dataset's defaults`);
    }
  };

  // Pixel values under the cursor: raw value of every channel, x/y in pixels and physical units, z, t.
  let pointer: { x: number; y: number } | undefined;
  let readoutBusy = false;
  let readoutAgain = false;
  const updateReadout = async (): Promise<void> => {
    const g = view.geometry();
    if (readoutBusy) {
      readoutAgain = true;
      return;
    }
    if (!pointer || !g || !dataset) return;
    const ds = dataset;
    const ix = Math.floor((pointer.x - g.originX) / g.scale);
    const iy = Math.floor((pointer.y - g.originY) / g.scale);
    if (ix < 0 || iy < 0 || ix >= ds.width || iy >= ds.height) {
      readout.textContent = '';
      return;
    }
    readoutBusy = true;
    const values = await hybrid.valuesAt(ix, iy).finally(() => (readoutBusy = false));
    const mpp = metresPerPixel(ds);
    const um = mpp ? ` (${((ix * mpp) / 1e-6).toFixed(2)} µm, ${((iy * mpp) / 1e-6).toFixed(2)} µm)` : '';
    const channels = values ? ds.channels.map((c, i) => `${c.label} ${values[i]}`).join('  ') : 'values unavailable';
    readout.textContent = `x ${ix}  y ${iy}${um}  z ${z + 1}/${ds.sizeZ}  t ${t + 1}/${ds.sizeT}\n${channels}`;
    readout.dataset.x = String(ix);
    readout.dataset.y = String(iy);
    readout.dataset.values = JSON.stringify(values ?? null);
    if (readoutAgain) {
      readoutAgain = false;
      void updateReadout();
    }
  };
  byId('view').addEventListener('pointermove', (e) => {
    const r = byId('view').getBoundingClientRect();
    pointer = { x: e.clientX - r.left, y: e.clientY - r.top };
    void updateReadout();
  });
  byId('view').addEventListener('pointerleave', () => {
    pointer = undefined;
    readout.textContent = '';
  });

  const gallery = new DatasetGallery(byId('gallery'), api);
  gallery.onOpen = (id) => void openDataset(id, undefined);
  byId('gallery-button').addEventListener('click', () => (gallery.shown ? gallery.hide() : void gallery.show(datasets)));

  // Saved render settings on the server: pick one to apply it, "save…" to store the current one.
  const savedSelect = byId<HTMLSelectElement>('saved');
  let savedList: SavedSettings[] = [];
  const loadSaved = async (id: string): Promise<SavedSettings[]> => {
    savedList = await api.settings(id).catch(() => []);
    savedSelect.replaceChildren(
      Object.assign(document.createElement('option'), { value: '', textContent: savedList.length ? '—' : '(none saved)' }),
      ...savedList.map((x) => Object.assign(document.createElement('option'), { value: x.name, textContent: x.name })),
    );
    return savedList;
  };
  savedSelect.addEventListener('change', () => {
    const chosen = savedList.find((x) => x.name === savedSelect.value);
    if (!chosen || !dataset) return;
    panel.load(dataset, chosen.spec, stats);
    panel.onChange(panel.current, undefined);
  });
  byId('save-settings').addEventListener('click', () => {
    if (!dataset) return;
    const ds = dataset;
    const name = window.prompt('Save these channel settings as ("default" = the dataset\'s default look)', savedSelect.value || 'my settings');
    if (!name) return;
    void api.saveSettings(ds.id, name, panel.current).then(
      async () => {
        await loadSaved(ds.id);
        savedSelect.value = name;
      },
      (e: unknown) => panel.showError(undefined, `saving failed: ${e instanceof ApiError ? e.message : String(e)}`),
    );
  });

  // Export: the view as shown (server picture + GPU layer), at screen resolution.
  const snapshot = () => {
    hybrid.draw();
    return view.snapshot(hybrid.canvas ? [hybrid.canvas] : []);
  };
  byId('export-png').addEventListener('click', () => {
    snapshot().toBlob((blob) => {
      if (!blob) return;
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `${dataset?.id ?? 'view'}-z${z}-t${t}.png`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    }, 'image/png');
  });
  // Export of a chosen region at full resolution, rendered by the workers.
  const regionExport = new RegionExport(byId('view'), byId('export-status'), api, () => (dataset && spec ? { dataset, spec, z, t } : undefined), () => view.geometry());
  byId('export-region').addEventListener('click', () => regionExport.toggleSelecting());
  // Share: the URL already holds the whole view (dataset, position, z, t, spec).
  byId('share').addEventListener('click', () => {
    history.replaceState(null, '', formatViewState(currentState()));
    const link = location.href;
    byId('share').dataset.link = link;
    void navigator.clipboard?.writeText(link).then(
      () => (byId('share').textContent = 'link copied'),
      () => window.prompt('Copy this link', link),
    );
    setTimeout(() => (byId('share').textContent = 'share'), 2000);
  });

  // For scripts and tests driving the page (like the data-* attributes on <body>).
  Object.assign(window, { tilefarm: { view, hybrid, geometry: () => view.geometry(), snapshot, exportRegion: (r: { x: number; y: number; w: number; h: number }) => regionExport.export(r), frameShown: () => frameShown(), plane: () => ({ z, t }) } });

  view.onLayerError = (message) => panel.showError(undefined, `the new picture could not be rendered: ${message}`);
  view.onChange = () => {
    status.update();
    if (specId && (view.state.shown ?? '').includes(`/${specId}/`)) hybrid.serverCaughtUp();
    hybrid.redrawSoon();
    writeUrl();
  };
  // Playback through T: a step is taken at most `fps` times a second, and only once the current
  // time point is on screen (GPU-complete or the server's layer shown), so playback never skips
  // frames it has not shown; the gateway and the raw-pixel prefetch keep the next ones coming.
  const playButton = byId<HTMLButtonElement>('play');
  const fpsSelect = byId<HTMLSelectElement>('fps');
  let playTimer: ReturnType<typeof setInterval> | undefined;
  const frameShown = () => hybrid.complete || serverShows(z, t);
  const setPlaying = (on: boolean) => {
    clearInterval(playTimer);
    playTimer = undefined;
    playButton.textContent = on ? '❚❚' : '▶';
    document.body.dataset.playing = String(on);
    if (!on || !dataset) return;
    playTimer = setInterval(() => {
      if (!dataset || !frameShown()) return;
      setT((t + 1) % dataset.sizeT);
    }, 1000 / Number(fpsSelect.value));
  };
  playButton.addEventListener('click', () => setPlaying(playTimer === undefined));
  fpsSelect.addEventListener('change', () => playTimer !== undefined && setPlaying(true));

  zSlider.addEventListener('input', () => setZ(Number(zSlider.value)));
  tSlider.addEventListener('input', () => setT(Number(tSlider.value)));
  picker.addEventListener('change', () => void openDataset(picker.value, undefined));

  // Z stepping: Shift/Alt + wheel over the picture, PageUp/PageDown or , and . anywhere but in a text field.
  byId('view').addEventListener(
    'wheel',
    (e) => {
      if (!e.shiftKey && !e.altKey) return;
      e.preventDefault();
      e.stopPropagation();
      setZ(z + (e.deltaY > 0 || e.deltaX > 0 ? 1 : -1));
    },
    { capture: true, passive: false },
  );
  // Keyboard, anywhere but in a text field: the help overlay (? or h) lists every key.
  const help = byId('help');
  const keys: Record<string, () => void> = {
    PageDown: () => setZ(z + 1),
    '.': () => setZ(z + 1),
    PageUp: () => setZ(z - 1),
    ',': () => setZ(z - 1),
    ']': () => setT(t + 1),
    '[': () => setT(t - 1),
    ' ': () => setPlaying(playTimer === undefined),
    '0': () => view.home(),
    r: () => regionExport.toggleSelecting(),
    '?': () => (help.hidden = !help.hidden),
    h: () => (help.hidden = !help.hidden),
    Escape: () => {
      if (regionExport.selecting) regionExport.cancel();
      help.hidden = true;
      gallery.hide();
    },
  };
  byId('help-button').addEventListener('click', () => (help.hidden = !help.hidden));
  for (let i = 1; i <= 9; i++) keys[String(i)] = () => document.querySelector<HTMLInputElement>(`[data-channel="${i - 1}"] .ch-active`)?.click();
  document.addEventListener(
    'keydown',
    (e) => {
      const target = e.target as HTMLElement | null;
      if (target && (target.tagName === 'INPUT' || target.tagName === 'SELECT' || target.tagName === 'TEXTAREA')) return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const action = keys[e.key];
      if (!action) return;
      e.preventDefault();
      e.stopPropagation();
      action();
    },
    { capture: true },
  );
  window.addEventListener('hashchange', () => {
    const link = parseViewState(location.hash);
    if (link.dataset) void openLink(link, link.dataset);
  });

  const listDatasets = async () => {
    for (;;) {
      try {
        datasets = await api.datasets();
        break;
      } catch (e) {
        // The server wants a token (ACCESS_TOKENS): ask for one; cancelling leaves the error shown.
        if (!(e instanceof ApiError && e.status === 401)) throw e;
        const given = window.prompt(token.value ? 'That access token was refused. Access token:' : 'This server needs an access token:');
        if (!given) throw e;
        token.set(given.trim());
        loader.reconnect();
      }
    }
    picker.replaceChildren(
      ...datasets.map((d) => {
        const o = document.createElement('option');
        o.value = d.id;
        o.textContent = `${d.name ?? d.id} (${d.width}×${d.height}, ${d.sizeC} ch, ${d.sizeZ} z${d.sizeT > 1 ? `, ${d.sizeT} t` : ''})`;
        return o;
      }),
    );
  };

  // Upload: drop an OME-TIFF anywhere on the page (or pick one); it opens once ingested.
  const uploads = new UploadPanel(byId('upload'), apiBase, () => new Set(datasets.map((d) => d.id)), (url, init) => api.fetch(url, init));
  uploads.acceptDrops(document.body);
  const fileInput = byId<HTMLInputElement>('upload-file');
  fileInput.addEventListener('change', () => {
    const file = fileInput.files?.[0];
    if (file) void uploads.upload(file);
    fileInput.value = '';
  });
  uploads.onDone = (id) => {
    void listDatasets().then(() => {
      panel.showError(undefined, undefined);
      return openDataset(id, undefined);
    });
  };

  await listDatasets();
  if (datasets.length === 0) {
    panel.showError(undefined, 'No datasets yet: drop an OME-TIFF on the page (or npm run ingest) to add one.');
    return;
  }
  const link = parseViewState(location.hash);
  if (link.dataset) await openLink(link, link.dataset);
  else await openDataset(datasets[0]?.id ?? '', undefined);
}

main().catch((e: unknown) => {
  const box = document.getElementById('status');
  if (box) box.textContent = `viewer failed to start: ${String(e)}`;
  console.error(e);
});

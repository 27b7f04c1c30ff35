import type { DatasetCatalog } from '@tilefarm/datasets';
import type { RetiredVersions } from '@tilefarm/queue';
import type { Logger } from '@tilefarm/telemetry';

export interface VersionPrunerDeps {
  retired: Pick<RetiredVersions, 'takeDue' | 'retire'>;
  catalog: Pick<DatasetCatalog, 'deleteVersion'>;
  logger: Logger;
  /** How often due versions are looked for. */
  intervalMs: number;
}

/**
 * Deletes retired dataset versions (sources and rendered tiles) once their grace period is over.
 * Every worker runs one; each due version is taken by one of them. A failed deletion is put back
 * for a minute later, so storage trouble delays it but never forgets it.
 */
export class VersionPruner {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly deps: VersionPrunerDeps) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running = this.running.then(async () => void (await this.pruneDue())).catch((e: unknown) => this.deps.logger.warn({ err: e }, 'version pruning failed'));
    }, this.deps.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running.catch(() => undefined);
  }

  /** One pass: deletes what is due now (a few versions at a time). */
  async pruneDue(now = Date.now()): Promise<number> {
    let pruned = 0;
    for (const { dataset, version } of await this.deps.retired.takeDue(now, 4)) {
      try {
        const objects = await this.deps.catalog.deleteVersion(dataset, version, { rendered: true });
        pruned++;
        this.deps.logger.info({ dataset, version, objects }, 'retired version deleted');
      } catch (e) {
        this.deps.logger.warn({ dataset, version, err: e }, 'retired version not deleted; trying again in a minute');
        await this.deps.retired.retire(dataset, version, now + 60_000).catch(() => undefined);
      }
    }
    return pruned;
  }
}

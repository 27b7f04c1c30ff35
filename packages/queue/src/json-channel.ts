import type { RedisClient } from './redis-connection';

/**
 * One Redis pub/sub channel of JSON messages checked against a zod schema. A malformed message
 * (from another process version) is dropped: every channel here has a way to recover from a lost
 * message, so dropping is safe.
 */
export class JsonChannel<T> {
  private readonly listeners = new Set<(message: T) => void>();
  private subscribed?: Promise<unknown>;

  constructor(
    readonly name: string,
    private readonly schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
    private readonly subscriber: RedisClient,
  ) {}

  /** Starts listening; resolves once the subscription is active. */
  async subscribe(listener: (message: T) => void): Promise<void> {
    this.listeners.add(listener);
    if (!this.subscribed) {
      this.subscriber.on('message', (channel: string, raw: string) => {
        if (channel !== this.name) return;
        let parsed;
        try {
          parsed = this.schema.safeParse(JSON.parse(raw));
        } catch {
          return;
        }
        if (!parsed.success) return;
        for (const l of this.listeners) l(parsed.data);
      });
      this.subscribed = this.subscriber.subscribe(this.name);
    }
    await this.subscribed;
  }
}

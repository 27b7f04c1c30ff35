import { RenderSpec, SpecId, TilefarmError, canonicalSpecJson, describeZodError, type SpecRef } from '@tilefarm/contracts';
import { specKey } from '@tilefarm/datasets';
import { checkFormulaSyntax, specIdOf } from '@tilefarm/render';
import type { ObjectStore } from '@tilefarm/storage';

const MEMO_LIMIT = 10_000;

/** Render specs by id: validated once, stored in the object store so every process can resolve an id. */
export class SpecRegistry {
  private readonly memo = new Map<string, RenderSpec>();

  constructor(private readonly store: ObjectStore) {}

  /** Validates a spec (every bad field named), stores it, and returns its id. Same spec → same id. */
  async register(input: unknown): Promise<{ id: string; spec: RenderSpec }> {
    const parsed = RenderSpec.safeParse(input);
    if (!parsed.success) throw new TilefarmError('invalid_spec', describeZodError(parsed.error));
    const spec = parsed.data;
    checkFormulaSyntax(spec);
    const id = specIdOf(spec);
    if (!this.memo.has(id)) {
      if (!(await this.store.head(specKey(id)))) {
        await this.store.put(specKey(id), Buffer.from(canonicalSpecJson(spec)), { contentType: 'application/json' });
      }
      this.remember(id, spec);
    }
    return { id, spec };
  }

  async get(id: string): Promise<RenderSpec> {
    if (!SpecId.safeParse(id).success) throw new TilefarmError('invalid_spec', `spec: "${id.slice(0, 40)}" is not a spec id`);
    const hit = this.memo.get(id);
    if (hit) return hit;
    const bytes = await this.store.get(specKey(id));
    if (!bytes) throw new TilefarmError('spec_not_found', `no spec "${id}"; POST it to /v1/specs first`);
    const spec = RenderSpec.parse(JSON.parse(bytes.toString('utf8')));
    this.remember(id, spec);
    return spec;
  }

  /** A spec given by id or inline (inline specs are registered on the way). */
  async resolve(ref: SpecRef | unknown): Promise<{ id: string; spec: RenderSpec }> {
    if (typeof ref === 'string') return { id: ref, spec: await this.get(ref) };
    return this.register(ref);
  }

  private remember(id: string, spec: RenderSpec): void {
    if (this.memo.size >= MEMO_LIMIT) this.memo.delete(this.memo.keys().next().value as string);
    this.memo.set(id, spec);
  }
}

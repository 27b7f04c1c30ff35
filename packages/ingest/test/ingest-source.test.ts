import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TilefarmError } from '@tilefarm/contracts';
import { IngestSourceFiles, parseIngestSource } from '@tilefarm/ingest';

// Issue 11 item 12: s3:// sources only from configured buckets/prefixes, and a failing download
// maps to the error table (no raw SDK text, never `internal`).

function refusal(f: () => unknown): { code: string; message: string } | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (!(e instanceof TilefarmError)) throw e;
    return { code: e.code, message: e.message };
  }
}

describe('parseIngestSource: s3:// sources', () => {
  const rules = { ingestRoot: undefined, s3Sources: ['lab-uploads/incoming', 'shared-bucket'] };

  it('accepts objects under a configured bucket or bucket/prefix', () => {
    expect(parseIngestSource('s3://lab-uploads/incoming/a.ome.tif', rules)).toMatchObject({ kind: 's3', bucket: 'lab-uploads', key: 'incoming/a.ome.tif' });
    expect(parseIngestSource('s3://shared-bucket/any/where.tif', rules)).toMatchObject({ kind: 's3', bucket: 'shared-bucket', key: 'any/where.tif' });
  });

  it('refuses other buckets, other prefixes and dot segments with 400 naming the setting', () => {
    for (const source of ['s3://secrets/a.tif', 's3://lab-uploads/outgoing/a.tif', 's3://lab-uploads/incoming-x/a.tif', 's3://lab-uploads/incoming/../private/a.tif', 's3://lab-uploads/incoming/./a.tif', 's3://lab-uploads/incoming//a.tif']) {
      const r = refusal(() => parseIngestSource(source, rules));
      expect([source, r?.code]).toEqual([source, 'bad_request']);
      expect(r?.message).toMatch(/INGEST_S3_SOURCES/);
    }
  });

  it('refuses every s3:// source when none are configured (a local-storage deployment)', () => {
    const r = refusal(() => parseIngestSource('s3://lab-uploads/incoming/a.tif', { ingestRoot: '/data', s3Sources: [] }));
    expect(r).toEqual({ code: 'bad_request', message: expect.stringMatching(/s3:\/\/ sources are not enabled.*INGEST_S3_SOURCES/) });
  });
});

describe('IngestSourceFiles: download failures', () => {
  let temp: string;
  beforeEach(() => {
    temp = mkdtempSync(join(tmpdir(), 'tilefarm-source-'));
  });
  afterEach(() => rmSync(temp, { recursive: true, force: true }));

  const failing = (error: Error) => ({
    downloadTo: async () => {
      throw error;
    },
  });

  it('maps an S3 refusal to source_unreadable without the SDK text', async () => {
    const sdk = Object.assign(new Error('User: arn:aws:iam::123456789012:user/worker is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::lab-uploads/incoming/a.tif'), { name: 'AccessDenied' });
    const files = new IngestSourceFiles({ ingestRoot: undefined, s3Sources: ['lab-uploads'], downloader: failing(sdk), tempDir: temp });
    const e = (await files.acquire('ing-a-1', 's3://lab-uploads/incoming/a.tif').catch((x: unknown) => x)) as TilefarmError;
    expect(e).toBeInstanceOf(TilefarmError);
    expect(e.code).toBe('source_unreadable');
    expect(e.message).toContain('s3://lab-uploads/incoming/a.tif');
    expect(e.message).toContain('AccessDenied');
    expect(e.message).not.toMatch(/arn:|not authorized/);
  });

  it('maps an unreachable S3 to unavailable (retried), and a missing downloader to bad_request', async () => {
    const down = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    const files = new IngestSourceFiles({ ingestRoot: undefined, s3Sources: ['lab-uploads'], downloader: failing(down), tempDir: temp });
    const e = (await files.acquire('ing-a-2', 's3://lab-uploads/a.tif').catch((x: unknown) => x)) as TilefarmError;
    expect([e.code, /127\.0\.0\.1/.test(e.message)]).toEqual(['unavailable', false]);
    const none = new IngestSourceFiles({ ingestRoot: undefined, s3Sources: ['lab-uploads'], tempDir: temp });
    expect(((await none.acquire('ing-a-3', 's3://lab-uploads/a.tif').catch((x: unknown) => x)) as TilefarmError).code).toBe('bad_request');
  });
});

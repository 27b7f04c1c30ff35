import { S3ObjectStore } from '../src/s3-object-store';
import { filesInBucket, startS3Server } from '../../../test/support/s3-server';
import { objectStoreContract } from './object-store-contract';

objectStoreContract('S3ObjectStore (s3rver over HTTP)', async () => {
  const s3 = await startS3Server();
  const store = new S3ObjectStore({
    bucket: s3.bucket,
    region: 'us-east-1',
    endpoint: s3.endpoint,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    prefix: 'contract/',
  });
  return { store, cleanup: () => s3.stop(), files: () => filesInBucket(s3) };
}, { atomicUnderConcurrentRead: false });

describe('S3ObjectStore failure', () => {
  it('fails ping against an unreachable endpoint instead of hanging', async () => {
    const store = new S3ObjectStore({ bucket: 'b', region: 'us-east-1', endpoint: 'http://127.0.0.1:9', accessKeyId: 'x', secretAccessKey: 'y', requestTimeoutMs: 1000 });
    await expect(store.ping()).rejects.toBeDefined();
    await store.close();
  });
});

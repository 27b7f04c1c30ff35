import { AccessToken } from '../src/access-token';

// The token in URLs that cannot send a header (<img>, the raw-pixel reader): added once, never to
// a signed URL. The viewer's HTTP fallback passed an already tokened URL through it again.
describe('AccessToken.query', () => {
  const token = new AccessToken('alpha-token-0123456789abcdef');

  it('adds the token once, however many times a URL passes through', () => {
    const once = token.query('http://h/v1/tiles/a/s/0/0/0/0/0.jpeg');
    expect(once).toBe('http://h/v1/tiles/a/s/0/0/0/0/0.jpeg?access_token=alpha-token-0123456789abcdef');
    expect(token.query(once)).toBe(once);
    expect(token.query('http://h/x?y=1')).toBe('http://h/x?y=1&access_token=alpha-token-0123456789abcdef');
  });

  it('leaves signed URLs and a tokenless viewer alone', () => {
    expect(token.query('http://h/x?exp=1&sig=abc')).toBe('http://h/x?exp=1&sig=abc');
    expect(new AccessToken(undefined).query('http://h/x')).toBe('http://h/x');
  });
});

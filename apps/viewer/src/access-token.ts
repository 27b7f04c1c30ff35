/** Where the token lives for this tab: it survives reloads, but not the tab, and is never in a link. */
const STORAGE_KEY = 'tilefarm.accessToken';

/**
 * The access token the viewer presents (ACCESS_TOKENS on the server): one holder shared by every
 * part that talks to the server, so a token typed in after a 401 reaches them all.
 */
export class AccessToken {
  constructor(public value: string | undefined) {}

  /**
   * Takes `token=` out of the page's fragment (`#…&token=…`) into sessionStorage, and rewrites the
   * visible URL without it, so it is neither shown, kept in history, nor copied into a share link.
   */
  static fromPage(): AccessToken {
    const q = new URLSearchParams(location.hash.replace(/^#/, ''));
    const given = q.get('token');
    if (given !== null) {
      q.delete('token');
      const rest = q.toString();
      history.replaceState(null, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
      if (given) sessionStorage.setItem(STORAGE_KEY, given);
    }
    return new AccessToken(given || sessionStorage.getItem(STORAGE_KEY) || undefined);
  }

  set(value: string | undefined): void {
    this.value = value || undefined;
    if (this.value) sessionStorage.setItem(STORAGE_KEY, this.value);
    else sessionStorage.removeItem(STORAGE_KEY);
  }

  /** Headers for fetch: `Authorization: Bearer` when a token is held. */
  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.value ? { ...extra, authorization: `Bearer ${this.value}` } : extra;
  }

  /**
   * A URL for an <img> or anything else that cannot send a header: `access_token=` added. Signed
   * URLs (`sig=`) are left alone: the signature is their permission; so are URLs that carry a
   * token already (the HTTP fallback's tile URL passed through the loader's download gave
   * `access_token=` twice, which the API refuses with 403).
   */
  query(url: string): string {
    if (!this.value || /[?&](sig|access_token)=/.test(url)) return url;
    return `${url}${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(this.value)}`;
  }
}

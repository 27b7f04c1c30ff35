import { TilefarmError } from '@tilefarm/contracts';
import { datasetAccessFor, type AccessTokens, type DatasetAccess, type Principal } from '@tilefarm/tile-requests';

/** What a connection is allowed, decided once in the connection middleware. */
export interface SocketIdentity {
  principal: Principal;
  /** The planner's check for every tile and viewport this socket asks for (undefined: open system). */
  access: DatasetAccess | undefined;
}

/** The parts of a Socket.IO handshake authentication looks at (kept free of socket.io types). */
export interface HandshakeView {
  auth: unknown;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * Authenticates a connection from its handshake: the token in `auth.token` (what socket.io-client
 * sends with `io(url, { auth: { token } })`), or an `Authorization: Bearer` header for non-browser
 * clients. Throws `unauthorized` (the connection is refused before any event is handled).
 */
export function authenticateHandshake(tokens: AccessTokens, handshake: HandshakeView): SocketIdentity {
  const auth = handshake.auth as { token?: unknown } | null | undefined;
  let token = typeof auth?.token === 'string' ? auth.token : undefined;
  const header = handshake.headers.authorization;
  if (token === undefined && typeof header === 'string' && /^Bearer /i.test(header)) token = header.slice(7).trim();
  const principal = tokens.authenticate(token);
  if (!principal) throw new TilefarmError('unauthorized');
  return { principal, access: datasetAccessFor(principal) };
}

// A real OpenID Connect provider for the server's tests (oauth2-mock-server): discovery, JWKS,
// authorization code with PKCE, signed ID tokens. Usage: node oidc-provider.mjs [PORT].
// Its /userinfo answers as X's /2/users/me does ({"data": {"id", "name", "username"}}), so it
// also stands in for X's OAuth 2.0 API.
// A control endpoint, on a port of its own, sets who signs in next and can spoil the next ID
// token:
//   POST /next {"sub": "...", "email": "...", "email_verified": true, "name": "...",
//               "auth_time": "now" | <seconds> | absent,
//               "spoil": "nonce" | "iss" | "aud" | "exp" | null}
// Both servers listen on ports the system chooses (PORT, when given, is the provider's), so no
// other process can take a port between choosing and listening. Once both listen it prints
//   oidc-provider: listening on 127.0.0.1:PORT control 127.0.0.1:CONTROL_PORT
import http from 'node:http';
import { OAuth2Server } from 'oauth2-mock-server';

const wanted = Number(process.argv[2] ?? 0);
const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
let next = { sub: 'someone', email: null, email_verified: false, name: null, spoil: null };

server.service.on('beforeTokenSigning', (token) => {
  const p = token.payload;
  p.sub = next.sub;
  if (next.email) p.email = next.email;
  p.email_verified = next.email_verified;
  if (next.name) p.name = next.name;
  // "now": a provider that made the person sign in again; a number: a sign-in of that time.
  if (next.auth_time === 'now') p.auth_time = Math.floor(Date.now() / 1000);
  else if (typeof next.auth_time === 'number') p.auth_time = next.auth_time;
  switch (next.spoil) {
    case 'nonce': p.nonce = 'not-the-nonce-we-sent'; break;
    case 'iss': p.iss = 'https://evil.example'; break;
    case 'aud': p.aud = 'another-client'; break;
    case 'exp': p.iat = Math.floor(Date.now() / 1000) - 7200; p.exp = p.iat + 3600; break;
  }
});

server.service.on('beforeUserinfo', (response) => {
  response.body = { data: { id: next.sub, name: next.name ?? 'X user', username: 'xuser' } };
});

await server.start(wanted, '127.0.0.1');
const port = server.address().port;
server.issuer.url = `http://127.0.0.1:${port}`;

const control = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    next = { ...next, spoil: null, ...JSON.parse(body || '{}') };
    res.end('ok');
  });
});
control.listen(0, '127.0.0.1', () => {
  const controlPort = control.address().port;
  console.log(`oidc-provider: listening on 127.0.0.1:${port} control 127.0.0.1:${controlPort}`);
});

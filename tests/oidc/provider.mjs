// A real OpenID provider (the certified `oidc-provider` package) on a loopback port, for the
// console's sign-in tests. Configuration comes as JSON in OIDC_TEST_PROVIDER:
//
//   {
//     "host": "127.0.0.1",                      // optional
//     "clients": [{"client_id", "client_secret", "redirect_uris": [...]}],
//     "users": {"alice": {"groups": ["sre-oncall"]}},
//     "groups_in_id_token": true,               // false: groups only from userinfo
//     "issuer": "http://127.0.0.1:PORT"         // optional: when a proxy stands in front
//   }
//
// Once listening it prints one line, {"issuer": "...", "listening": "http://127.0.0.1:PORT"},
// on standard output.
// Sign-in takes a minimal interaction a test drives over HTTP: the provider redirects the
// browser to /interaction/<uid>, and a form POST to /interaction/<uid>/login with `login=<user>`
// (or `cancel=1`) finishes it. Grants are given without a consent screen.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const input = JSON.parse(process.env.OIDC_TEST_PROVIDER ?? '{}');
const host = input.host ?? '127.0.0.1';
const users = input.users ?? {};
const groupsInIdToken = input.groups_in_id_token ?? true;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const server = createServer();
await new Promise((resolve) => server.listen(0, host, resolve));
const listening = `http://${host}:${server.address().port}`;
const issuer = input.issuer ?? listening;

const provider = new Provider(issuer, {
  clients: (input.clients ?? []).map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  })),
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomUUID()] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  conformIdTokenClaims: !groupsInIdToken,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: id,
          name: id,
          email: `${id}@example.test`,
          email_verified: true,
          groups: user.groups ?? [],
        };
      },
    };
  },
  // First-party console: no consent screen; every requested scope is granted.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
    await grant.save();
    return grant;
  },
});

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    res.writeHead(400).end('interaction mismatch');
    return;
  }
  if (req.method === 'GET' && !action) {
    res.writeHead(200, { 'content-type': 'text/html' }).end(
      `<form method="post" action="/interaction/${uid}/login"><input name="login"><button>Sign in</button></form>`,
    );
    return;
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    if (form.get('cancel')) {
      await provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: 'the user cancelled',
      }, { mergeWithLastSubmission: false });
      return;
    }
    const login = form.get('login') ?? '';
    if (!users[login]) {
      res.writeHead(400).end(`no user ${login}`);
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    return;
  }
  res.writeHead(405).end();
}

const callback = provider.callback();
server.on('request', (req, res) => {
  const match = /^\/interaction\/([^/?]+)(?:\/([a-z]+))?/.exec(req.url ?? '');
  if (!match) {
    callback(req, res);
    return;
  }
  interaction(req, res, match[1], match[2]).catch((err) => {
    if (!res.headersSent) res.writeHead(500);
    res.end(String(err));
  });
});

// A test that stopped reading must not take the provider down with EPIPE.
process.stdout.on('error', () => {});
process.stdout.write(`${JSON.stringify({ issuer, listening })}\n`);
// The test closes standard input (or dies) when it is done: stop with it.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();

// A real OpenID Provider (panva/oidc-provider, OpenID Certified) for brevis's tests.
//
// Environment:
//   PORT       listen port on 127.0.0.1 (0 = any free port; the chosen one is printed)
//   ISSUER     issuer URL (default http://127.0.0.1:<port>)
//   ALG        RS256 | PS256 | ES256 | EdDSA  (ID token signing algorithm)
//   TTL        ID token lifetime in seconds (default 600)
//   TENANTS    comma-separated names: one more provider per name, with issuer
//              <issuer>/<name> (own discovery and JWKS under that path, same keys)
//
// Prints "READY <port> <issuer>" on stdout once listening.
//
// Tokens are minted through the real authorization-code flow (see tests/common). The
// /__test/* routes below are test controls, not part of OIDC:
//   PUT  /__test/users/<sub>   JSON claims returned for that account
//   POST /__test/rotate        new signing key first; ?drop=1 also unpublishes the old keys
//   POST /__test/sign          sign arbitrary {header, claims} with the current key (or with
//                              an explicit "hmac" secret / "none"), for negative tests
//   GET  /__test/stats         {"jwks": <number of JWKS fetches served>}
import http from 'node:http';
import * as crypto from 'node:crypto';
import Provider from 'oidc-provider';

const PORT = Number(process.env.PORT ?? 0);
const ALG = process.env.ALG || 'RS256';
const TTL = Number(process.env.TTL || 600);
const REDIRECT = 'http://127.0.0.1:1/cb';
let issuer = process.env.ISSUER;

// Claim names oidc-provider may put into ID tokens (it drops names it does not know).
const CI_CLAIMS = [
  'repository', 'repository_id', 'repository_owner', 'repository_owner_id', 'repository_visibility',
  'workflow', 'workflow_ref', 'workflow_sha', 'job_workflow_ref', 'job_workflow_sha', 'ref', 'ref_type',
  'ref_protected', 'sha', 'event_name', 'run_id', 'run_number', 'run_attempt', 'runner_environment',
  'actor', 'actor_id', 'environment', 'head_ref', 'base_ref', 'enterprise', 'enterprise_id', 'check_run_id',
  'namespace_id', 'namespace_path', 'project_id', 'project_path', 'user_id', 'user_login', 'user_email',
  'user_access_level', 'pipeline_id', 'pipeline_source', 'job_id', 'ref_path', 'environment_protected',
  'deployment_tier', 'environment_action', 'runner_id', 'ci_config_ref_uri', 'ci_config_sha',
  'project_visibility', 'job_namespace_id', 'job_namespace_path',
  'organization_slug', 'pipeline_slug', 'build_number', 'build_branch', 'build_tag', 'build_commit',
  'build_source', 'step_key', 'agent_id', 'organization_id', 'cluster_id', 'queue_id',
  'account_id', 'account_name', 'pipeline_name', 'workflow_id', 'initiator', 'scm_repo_url',
  'scm_user_name', 'scm_ref', 'scm_pull_request_target_branch', 'platform_url',
  'oidc.circleci.com/project-id', 'oidc.circleci.com/pipeline-definition-id', 'oidc.circleci.com/pipeline-id',
  'oidc.circleci.com/workflow-id', 'oidc.circleci.com/job-id', 'oidc.circleci.com/vcs-origin',
  'oidc.circleci.com/vcs-ref', 'oidc.circleci.com/ssh-rerun',
  'workspace_domain', 'project_name', 'execution_id', 'revision', 'triggered_on',
  'kubernetes.io', 'federated_claims', 'groups', 'azp', 'act', 'internal',
];

const accounts = new Map();
let jwksFetches = 0;

function newKey(alg) {
  const spec = {
    RS256: ['rsa', { modulusLength: 2048 }], PS256: ['rsa', { modulusLength: 2048 }],
    ES256: ['ec', { namedCurve: 'P-256' }], EdDSA: ['ed25519', {}],
  }[alg];
  if (!spec) throw new Error(`unsupported ALG ${alg}`);
  const { privateKey } = crypto.generateKeyPairSync(spec[0], spec[1]);
  const jwk = privateKey.export({ format: 'jwk' });
  jwk.kid = crypto.randomBytes(8).toString('hex');
  jwk.use = 'sig';
  return jwk;
}

let keys = [newKey(ALG)];

function buildProvider(issuer) {
  const client = (id) => ({
    client_id: id, client_secret: 'test-secret', redirect_uris: [REDIRECT],
    response_types: ['code'], grant_types: ['authorization_code'], id_token_signed_response_alg: ALG,
  });
  const provider = new Provider(issuer, {
    clients: [client('sigstore'), client('other-audience')],
    jwks: { keys },
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'PS256', 'ES256', 'EdDSA'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], ci: CI_CLAIMS },
    conformIdTokenClaims: false,
    ttl: { IdToken: TTL, AccessToken: TTL, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
    pkce: { required: () => false },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, sub) {
      return { accountId: sub, async claims() { return { ...(accounts.get(sub) || {}), sub }; } };
    },
    async loadExistingGrant(ctx) {
      const { Grant } = ctx.oidc.provider;
      const id = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (id) return Grant.find(id);
      const grant = new Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email ci');
      await grant.save();
      return grant;
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider.callback();
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// Signs a JWS exactly as a provider would, for tokens the real flow will not produce.
function signToken({ header = {}, claims = {}, hmac, unsigned }) {
  const key = keys[0];
  const h = unsigned ? { alg: 'none', ...header }
    : hmac !== undefined ? { alg: 'HS256', ...header }
    : { alg: ALG, kid: key.kid, ...header };
  const input = `${b64url(JSON.stringify(h))}.${b64url(JSON.stringify(claims))}`;
  if (unsigned) return `${input}.`;
  let sig;
  if (hmac !== undefined) {
    sig = crypto.createHmac('sha256', hmac).update(input).digest();
  } else {
    const priv = crypto.createPrivateKey({ key, format: 'jwk' });
    if (ALG === 'RS256') sig = crypto.sign('sha256', Buffer.from(input), priv);
    else if (ALG === 'PS256') sig = crypto.sign('sha256', Buffer.from(input), { key: priv, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    else if (ALG === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key: priv, dsaEncoding: 'ieee-p1363' });
    else sig = crypto.sign(null, Buffer.from(input), priv);
  }
  return `${input}.${b64url(sig)}`;
}

const readBody = (req) => new Promise((ok) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => ok(b)); });
const json = (res, code, obj) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(obj));

const TENANTS = (process.env.TENANTS || '').split(',').filter(Boolean);
let handler = null;
let tenantHandlers = new Map();
const rebuild = () => {
  handler = buildProvider(issuer);
  tenantHandlers = new Map(TENANTS.map((t) => [t, buildProvider(`${issuer}/${t}`)]));
};
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://x');
    const user = url.pathname.match(/^\/__test\/users\/(.+)$/);
    if (user && req.method === 'PUT') {
      accounts.set(decodeURIComponent(user[1]), JSON.parse(await readBody(req)));
      return res.writeHead(204).end();
    }
    if (url.pathname === '/__test/rotate' && req.method === 'POST') {
      const k = newKey(ALG);
      keys = url.searchParams.get('drop') ? [k] : [k, ...keys];
      rebuild();
      return json(res, 200, { kid: k.kid });
    }
    if (url.pathname === '/__test/sign' && req.method === 'POST') {
      return json(res, 200, { token: signToken(JSON.parse(await readBody(req))) });
    }
    if (url.pathname === '/__test/stats') {
      return json(res, 200, { jwks: jwksFetches });
    }
    if (url.pathname === '/__test/public-key') {
      const pub = crypto.createPublicKey({ key: keys[0], format: 'jwk' });
      return res.writeHead(200, { 'content-type': 'text/plain' }).end(pub.export({ type: 'spki', format: 'pem' }));
    }
    if (url.pathname.endsWith('/jwks')) jwksFetches += 1;
    const tenant = TENANTS.find((t) => url.pathname === `/${t}` || url.pathname.startsWith(`/${t}/`));
    if (tenant) {
      // Mount the tenant's provider under its path, as a router would.
      req.originalUrl = req.url;
      req.url = req.url.slice(tenant.length + 1) || '/';
      return tenantHandlers.get(tenant)(req, res);
    }
    return handler(req, res);
  } catch (e) {
    console.error(e);
    return json(res, 500, { error: String(e) });
  }
});

server.listen(PORT, '127.0.0.1', () => {
  const port = server.address().port;
  issuer ||= `http://127.0.0.1:${port}`;
  rebuild();
  console.log(`READY ${port} ${issuer}`);
});

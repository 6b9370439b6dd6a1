// A real OpenID provider for the single sign-on tests: the certified `oidc-provider` package on a
// loopback port, with one confidential client (PKCE required) and four people whose `groups` claim
// maps to moat's roles. Its login page is a one-field form (the account name), so a test can sign
// in without a browser. Prints `issuer=URL` once it listens; runs until killed.
// Environment: CLIENT_SECRET, REDIRECT_URI.

import http from "node:http";
import Provider from "oidc-provider";

const people = {
  alice: { email: "alice@example.com", groups: ["moat-admins", "staff"] },
  bob: { email: "bob@example.com", groups: ["research-leads", "staff"] },
  carol: { email: "carol@example.com", groups: ["auditors"] },
  dave: { email: "dave@example.com", groups: ["staff"] },
};

let provider;

function page(res, status, body) {
  res.writeHead(status, { "content-type": "text/html; charset=utf-8" });
  res.end(`<!doctype html><html><body>${body}</body></html>`);
}

async function readForm(req) {
  let text = "";
  for await (const chunk of req) text += chunk;
  return new URLSearchParams(text);
}

async function interaction(req, res) {
  const url = new URL(req.url, "http://x");
  const [, , uid, step] = url.pathname.split("/");
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, "wrong interaction");
  if (req.method === "GET") {
    return page(res, 200, `<form method="post" action="/interaction/${uid}/login"><input name="login"><button>Sign in</button></form>`);
  }
  if (req.method === "POST" && step === "login") {
    const login = (await readForm(req)).get("login");
    if (!people[login]) return page(res, 403, "no such person");
    return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
  }
  return page(res, 404, "not found");
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith("/interaction/")) {
    interaction(req, res).catch((e) => page(res, 500, String(e)));
  } else {
    provider.callback()(req, res);
  }
});

server.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: "moatd",
        client_secret: process.env.CLIENT_SECRET,
        redirect_uris: [process.env.REDIRECT_URI],
        response_types: ["code"],
        grant_types: ["authorization_code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    pkce: { required: () => true },
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["groups"] },
    // The ID token carries the scopes' claims (moat reads `groups` from it).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, i) => `/interaction/${i.uid}` },
    // First-party client: no consent screen.
    loadExistingGrant: async (ctx) => {
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope("openid email profile");
      grant.addOIDCClaims(["email", "email_verified", "groups"]);
      await grant.save();
      return grant;
    },
    findAccount: async (ctx, id) =>
      people[id] && {
        accountId: id,
        claims: async () => ({ sub: id, email: people[id].email, email_verified: true, groups: people[id].groups }),
      },
    cookies: { keys: ["moat-test-cookie-key"] },
  });
  console.log(`issuer=${issuer}`);
});

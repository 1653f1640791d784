// Drives jsforce against a served emulator, each step as jsforce's documentation shows.
// Usage: node jsforce_steps.js <step> '<json arguments>'; prints one JSON object.
// An error a step expects is reported as {"error": name, "message": ...}, not thrown.
'use strict';

const jsforce = require('jsforce');

async function browserCode(url) {
  // The user's browser: the emulator auto-approves, so the authorize URL answers a
  // redirect to the callback carrying the code.
  const res = await fetch(url, { redirect: 'manual' });
  const location = res.headers.get('location');
  if (!location) throw new Error(`authorize answered ${res.status} without a redirect`);
  const code = new URL(location).searchParams.get('code');
  if (!code) throw new Error(`no code in ${location}`);
  return code;
}

function oauth2Of(a) {
  return new jsforce.OAuth2({
    loginUrl: a.loginUrl,
    clientId: a.clientId,
    clientSecret: a.clientSecret,
    redirectUri: a.redirectUri,
  });
}

const steps = {
  // Web server flow: getAuthorizationUrl, the browser, then conn.authorize(code).
  async web_flow(a) {
    const oauth2 = oauth2Of(a);
    const url = oauth2.getAuthorizationUrl({ scope: 'api refresh_token openid' });
    const conn = new jsforce.Connection({ oauth2 });
    const userInfo = await conn.authorize(await browserCode(url));
    return {
      authorizationUrl: url,
      accessToken: conn.accessToken,
      refreshToken: conn.refreshToken,
      instanceUrl: conn.instanceUrl,
      userInfo,
    };
  },

  // A query at jsforce's default API version.
  async query(a) {
    const conn = new jsforce.Connection({ instanceUrl: a.instanceUrl, accessToken: a.accessToken });
    const result = await conn.query('SELECT Id, Name FROM Account');
    return { version: conn.version, totalSize: result.totalSize, names: result.records.map((r) => r.Name) };
  },

  // identity() on a connection rebuilt from stored tokens (no userInfo): it reads the
  // resource directory's `identity` first.
  async identity(a) {
    const conn = new jsforce.Connection({ instanceUrl: a.instanceUrl, accessToken: a.accessToken });
    const identity = await conn.identity();
    return { username: identity.username, user_id: identity.user_id, organization_id: identity.organization_id };
  },

  // sObject describe and CRUD through conn.sobject('Account').
  async sobject(a) {
    const conn = new jsforce.Connection({ instanceUrl: a.instanceUrl, accessToken: a.accessToken });
    const account = conn.sobject('Account');
    const describe = await account.describe();
    const created = await account.create({ Name: 'jsforce Inc.' });
    await account.update({ Id: created.id, Phone: '555-0199' });
    const row = await account.retrieve(created.id);
    const deleted = await account.destroy(created.id);
    let missing;
    try {
      await account.create({ Industry: 'Media' });
    } catch (err) {
      missing = { error: err.name || err.errorCode, message: err.message };
    }
    return {
      describeName: describe.name,
      fieldCount: describe.fields.length,
      created: created.success,
      phone: row.Phone,
      deleted: deleted.success,
      missing,
    };
  },

  // Automatic refresh: the stored access token has expired; jsforce refreshes it with
  // the refresh token on the 401 and retries.
  async auto_refresh(a) {
    const conn = new jsforce.Connection({
      oauth2: oauth2Of(a),
      instanceUrl: a.instanceUrl,
      accessToken: a.accessToken,
      refreshToken: a.refreshToken,
    });
    const refreshed = [];
    conn.on('refresh', (accessToken) => refreshed.push(accessToken));
    const result = await conn.query('SELECT Id FROM Account');
    return { totalSize: result.totalSize, refreshed: refreshed.length, accessToken: conn.accessToken };
  },

  // Revoke: a live token, then one that is not (jsforce reads the error urlencoded).
  async revoke(a) {
    const oauth2 = oauth2Of(a);
    await oauth2.revokeToken(a.token);
    try {
      await oauth2.revokeToken(a.token + 'x');
      return { revoked: true, error: null };
    } catch (err) {
      return { revoked: true, error: err.name, message: err.message };
    }
  },

  // JWT bearer: sign with the private key whose certificate the app holds, then
  // conn.authorize({ grant_type, assertion }).
  async jwt_bearer(a) {
    const jwt = require('jsonwebtoken');
    const assertion = jwt.sign(
      { iss: a.clientId, sub: a.username, aud: a.audience, exp: Math.floor(Date.now() / 1000) + 180 },
      a.privateKey,
      { algorithm: 'RS256' },
    );
    const conn = new jsforce.Connection({ oauth2: oauth2Of(a) });
    const userInfo = await conn.authorize({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion,
    });
    const result = await conn.query('SELECT Id FROM Account');
    return { userInfo, instanceUrl: conn.instanceUrl, totalSize: result.totalSize };
  },
};

async function main() {
  const [step, raw] = process.argv.slice(2);
  const run = steps[step];
  if (!run) throw new Error(`unknown step ${step}`);
  let out;
  try {
    out = await run(JSON.parse(raw || '{}'));
  } catch (err) {
    out = { error: err.name || 'Error', errorCode: err.errorCode, message: err.message };
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(2);
});

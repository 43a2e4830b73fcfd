#!/usr/bin/env node
// Real-browser check of the OpenID provider's hosted pages: sign-in (with one wrong
// password first), two-step verification, the workspace chooser, the consent page (with
// --consent allow, for a third-party client), the redirect back to the client, and
// sign-out. Driven with the keyboard only, screenshotted, and checked
// with axe-core (WCAG 2 A and AA). Headless Debian Chromium, driven by playwright-core.
//
//   node tests/browser/signin.mjs --base http://127.0.0.1:PORT --client-id ID \
//     --redirect-uri https://rp.example.com/callback --email E --password P \
//     --totp-secret BASE32 --tenant acme --screenshots DIR
//     [--consent allow] [--timeout-ms 60000] [--chromium /usr/bin/chromium]
//
// Needs a running server with: a public client registered for --redirect-uri, a user
// with TOTP enrolled and an active member of --tenant and of at least one other tenant.
// Prints one line per check ("ok NAME" / "fail NAME DETAIL"; "# ..." lines are notes),
// then one JSON line; exits 0 only if every check passed.

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------- arguments

const USAGE =
  'usage: node signin.mjs --base URL --client-id ID --redirect-uri URI --email E ' +
  '--password P --totp-secret BASE32 --tenant ID --screenshots DIR ' +
  '[--consent allow] [--timeout-ms 60000] [--chromium /usr/bin/chromium]';

function parseArgs(argv) {
  const known = new Set([
    'base', 'client-id', 'redirect-uri', 'email', 'password', 'totp-secret', 'tenant',
    'screenshots', 'timeout-ms', 'chromium', 'consent',
  ]);
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    let name = arg.slice(2);
    let value;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    } else {
      value = argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
    }
    if (!known.has(name)) throw new Error(`unknown option --${name}`);
    args[name] = value;
  }
  for (const name of ['base', 'client-id', 'redirect-uri', 'email', 'password', 'totp-secret', 'tenant', 'screenshots']) {
    if (!args[name]) throw new Error(`--${name} is required`);
  }
  args.base = args.base.replace(/\/+$/, '');
  args['timeout-ms'] = Number(args['timeout-ms'] ?? 60000);
  if (!Number.isFinite(args['timeout-ms']) || args['timeout-ms'] <= 0) throw new Error('--timeout-ms must be a positive number');
  args.chromium ??= '/usr/bin/chromium';
  return args;
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (error) {
  console.error(`${error.message}\n${USAGE}`);
  process.exit(2);
}

const ACTION_TIMEOUT_MS = 10_000;
const NAVIGATION_TIMEOUT_MS = 15_000;
const MAX_TABS = 12;

// ---------------------------------------------------------------- TOTP (RFC 6238 / 4226)

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.replace(/[\s-]/g, '').replace(/=+$/, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out = [];
  for (const char of clean) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error(`--totp-secret is not base32 (${JSON.stringify(char)})`);
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totp(secret, step, digits = 6) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const number = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(number % 10 ** digits).padStart(digits, '0');
}

const totpSecret = base32Decode(args['totp-secret']);
const currentStep = () => Math.floor(Date.now() / 1000 / 30);

// ---------------------------------------------------------------- reporting

const results = [];
const violationCounts = { critical: 0, serious: 0, moderate: 0, minor: 0 };
const axeByPage = {};
let pages = 0;
let codeReceived = false;
let issuer = null;
let finished = false;

function ok(name) {
  results.push({ name, ok: true });
  console.log(`ok ${name}`);
}
function fail(name, detail) {
  results.push({ name, ok: false });
  console.log(`fail ${name} ${oneLine(detail)}`);
}
function note(text) {
  console.log(`# ${oneLine(text)}`);
}
function check(name, condition, detail) {
  if (condition) ok(name);
  else fail(name, detail);
  return condition;
}
/** A URL without its query (which may hold an authorization code). */
function where(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol.startsWith('http') ? `${parsed.origin}${parsed.pathname}` : url;
  } catch {
    return String(url);
  }
}
function oneLine(value) {
  return String(value ?? '').replace(/\s+/g, ' ').trim();
}

class FlowError extends Error {}
/** A check the rest of the flow depends on: on failure, the flow stops. */
function must(name, condition, detail) {
  if (!check(name, condition, detail)) throw new FlowError(`${name}: ${oneLine(detail)}`);
}

function summary() {
  return JSON.stringify({
    code_received: codeReceived,
    pages,
    violations: violationCounts,
    issuer,
    axe: axeByPage,
    checks: results.length,
    failed: results.filter((r) => !r.ok).length,
  });
}

// ---------------------------------------------------------------- the run

const baseOrigin = new URL(args.base).origin;
const redirectUri = new URL(args['redirect-uri']);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const axeVersion = JSON.parse(readFileSync(require.resolve('axe-core/package.json'), 'utf8')).version;

let browser;
const cspChecks = [];

async function finish(code) {
  if (finished) return;
  finished = true;
  clearTimeout(hardTimeout);
  // The CSP checks of the responses seen so far, even when the flow stopped early.
  await Promise.race([Promise.allSettled(cspChecks), sleep(2000)]);
  if (browser) await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
  console.log(summary());
  process.exit(code);
}

const hardTimeout = setTimeout(() => {
  fail('timeout', `the whole run took longer than ${args['timeout-ms']} ms`);
  finish(1);
}, args['timeout-ms']);

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function main() {
  mkdirSync(args.screenshots, { recursive: true });
  note(`playwright-core ${require('playwright-core/package.json').version}, axe-core ${axeVersion}`);

  browser = await chromium.launch({
    executablePath: args.chromium,
    headless: true,
    timeout: 30_000,
    // CI runs as root, where Chromium's sandbox cannot start. The rest keeps Chromium
    // from calling home on a machine whose network is closed.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  note(`chromium ${browser.version()}`);

  const context = await browser.newContext({
    // The pages' CSP (default-src 'none': no script at all) would block the axe-core
    // script injected with page.addScriptTag, so the context bypasses CSP for the axe
    // runs. The CSP itself is still checked: every page response must carry the header
    // (see the response listener below).
    bypassCSP: true,
    viewport: { width: 1024, height: 768 },
    locale: 'en-US',
  });
  context.setDefaultTimeout(ACTION_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(NAVIGATION_TIMEOUT_MS);

  const page = await context.newPage();

  // The client's redirect URI is served by nothing here: the browser answers it itself
  // with a tiny page. Not with page.route()/context.route(): Playwright hands its route
  // handlers only the first request of a redirect chain and lets every redirect hop go
  // to the network (playwright-core's crNetworkManager continues any request with
  // redirectedFrom), and the way back to the client is the server's 302. Chromium's own
  // Fetch interception does pause redirect hops, so it is used through a CDP session.
  const clientLanding = [];
  const cdp = await context.newCDPSession(page);
  cdp.on('Fetch.requestPaused', (event) => {
    const url = new URL(event.request.url);
    const landing = url.pathname === redirectUri.pathname;
    if (landing) clientLanding.push(event.request.url);
    const body = landing
      ? '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Relying party</title></head><body><main><h1>Back at the client</h1></main></body></html>'
      : 'not found';
    cdp
      .send('Fetch.fulfillRequest', {
        requestId: event.requestId,
        responseCode: landing ? 200 : 404,
        responseHeaders: [{ name: 'content-type', value: landing ? 'text/html; charset=utf-8' : 'text/plain' }],
        body: Buffer.from(body).toString('base64'),
      })
      .catch((error) => note(`could not answer ${event.request.url}: ${error.message}`));
  });
  await cdp.send('Fetch.enable', {
    patterns: [{ urlPattern: `${redirectUri.origin}/*`, requestStage: 'Request' }],
  });

  // Every document (and redirect) the server answers a navigation with must carry
  // the Content-Security-Policy header.
  let lastDocument = null;
  page.on('response', (response) => {
    const request = response.request();
    if (!request.isNavigationRequest() || response.frame() !== page.mainFrame()) return;
    const url = new URL(response.url());
    if (url.origin !== baseOrigin) return;
    const status = response.status();
    if (status < 300 || status >= 400) lastDocument = response;
    cspChecks.push(
      response
        .allHeaders()
        .catch(() => response.headers())
        .then((headers) => {
          const csp = headers['content-security-policy'];
          const name = `csp ${request.method()} ${url.pathname} ${status}`;
          if (!csp) fail(name, 'no Content-Security-Policy header');
          else if (!/(^|;)\s*default-src 'none'/.test(csp)) fail(name, `policy lacks default-src 'none': ${csp}`);
          else ok(name);
        }),
    );
  });
  page.on('pageerror', (error) => note(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A failed subresource is noted from its response below, with its path.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      note(`console error on ${where(page.url())}: ${message.text()}`);
    }
  });
  page.on('response', (response) => {
    if (!response.request().isNavigationRequest() && response.status() >= 400) {
      note(`subresource ${response.request().method()} ${where(response.url())} answered ${response.status()}`);
    }
  });

  // ---- helpers bound to the page

  async function h1() {
    return oneLine(await page.locator('h1').first().textContent({ timeout: 2000 }).catch(() => null));
  }

  /** Fails (and stops the flow) unless the page is the expected step. */
  async function expectStep(name, heading, status) {
    const seen = await h1();
    const gotStatus = lastDocument?.status();
    must(`${name}:page`, seen === heading && (status === undefined || gotStatus === status),
      `expected "${heading}"${status === undefined ? '' : ` (${status})`}, got "${seen}" (${gotStatus}) at ${where(page.url())}`);
  }

  async function activeElement() {
    return page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      return {
        tag: el.tagName.toLowerCase(),
        id: el.id || null,
        name: el.getAttribute('name'),
        value: el.getAttribute('value'),
        type: el.getAttribute('type'),
        text: (el.textContent || '').trim(),
      };
    });
  }

  async function expectFocus(name, want) {
    const el = await activeElement();
    const match = el && Object.entries(want).every(([key, value]) => el[key] === value);
    must(name, match, `focus is on ${JSON.stringify(el)}, expected ${JSON.stringify(want)}`);
  }

  /** Presses Tab until the focused element matches, at most MAX_TABS times. */
  async function tabTo(name, want) {
    for (let presses = 1; presses <= MAX_TABS; presses++) {
      await page.keyboard.press('Tab');
      const el = await activeElement();
      if (el && Object.entries(want).every(([key, value]) => el[key] === value)) {
        ok(`${name} (${presses} Tab)`);
        return;
      }
    }
    must(name, false, `not reached with ${MAX_TABS} Tab presses; focus ends on ${JSON.stringify(await activeElement())}`);
  }

  /** Presses Enter and waits for the next document to load. */
  async function enterAndWait() {
    await Promise.all([
      page.waitForEvent('load', { timeout: NAVIGATION_TIMEOUT_MS }),
      page.keyboard.press('Enter'),
    ]);
  }

  async function screenshot(file) {
    await page.screenshot({ path: join(args.screenshots, file), fullPage: true });
  }

  /** Screenshot and axe run of the page in view. */
  async function inspect(label) {
    pages += 1;
    await screenshot(`${label}.png`);
    // Injected as a script tag; works only because the context bypasses CSP (above).
    await page.addScriptTag({ content: axeSource });
    const result = await page.evaluate(
      (options) => window.axe.run(document, options),
      { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] }, resultTypes: ['violations', 'incomplete'] },
    );
    const counts = { critical: 0, serious: 0, moderate: 0, minor: 0 };
    const blocking = [];
    for (const violation of result.violations) {
      const impact = violation.impact ?? 'minor';
      counts[impact] = (counts[impact] ?? 0) + violation.nodes.length;
      violationCounts[impact] = (violationCounts[impact] ?? 0) + violation.nodes.length;
      for (const node of violation.nodes) {
        const line = `${violation.id} impact=${node.impact ?? impact} target=${JSON.stringify(node.target)} html=${node.html}`;
        if (impact === 'serious' || impact === 'critical') blocking.push(line);
        else note(`axe ${label}: ${line}`);
      }
    }
    for (const item of result.incomplete) {
      note(`axe ${label}: needs review: ${item.id} (${item.nodes.length} node(s)): ${item.help}`);
    }
    axeByPage[label] = counts;
    if (blocking.length === 0) ok(`axe ${label} (${result.passes?.length ?? 'n'} rules passed, ${result.violations.length} violated)`);
    for (const line of blocking) fail(`axe ${label}`, line);
  }

  // ---- 1. the authorization request

  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const authorize = new URL('/oauth2/authorize', args.base);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: args['client-id'],
    redirect_uri: args['redirect-uri'],
    scope: 'openid email',
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    acr_values: 'aal2',
  }).toString();

  const first = await page.goto(authorize.toString(), { waitUntil: 'load' });
  lastDocument = first;
  await expectStep('sign-in', 'Sign in', 200);
  await inspect('01-sign-in');
  await expectFocus('sign-in:autofocus-email', { tag: 'input', id: 'email' });

  // ---- 2a. a wrong password, with the keyboard
  await page.keyboard.type(args.email);
  await page.keyboard.press('Tab');
  await expectFocus('sign-in:tab-to-password', { tag: 'input', id: 'password' });
  await page.keyboard.type(`${args.password} but wrong`);
  await enterAndWait();
  await expectStep('sign-in-error', 'Sign in', 401);
  const alert = oneLine(await page.locator('[role="alert"]').first().textContent({ timeout: 2000 }).catch(() => ''));
  check('sign-in-error:alert', alert === 'Incorrect email or password.', `alert text is "${alert}"`);
  const kept = await page.locator('#email').inputValue();
  check('sign-in-error:email-kept', kept === args.email, `email field holds "${kept}"`);
  await inspect('02-sign-in-error');

  // ---- 2b. the right password, with the keyboard
  await expectFocus('sign-in-error:autofocus-email', { tag: 'input', id: 'email' });
  // The field is filled in again: select what it holds so that typing replaces it.
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.type(args.email);
  await page.keyboard.press('Tab');
  await expectFocus('sign-in-error:tab-to-password', { tag: 'input', id: 'password' });
  await page.keyboard.type(args.password);
  await enterAndWait();

  // ---- 3. two-step verification
  await expectStep('totp', 'Two-step verification', 200);
  const codeLabel = oneLine(await page.locator('label[for="code"]').textContent().catch(() => ''));
  check('totp:label', codeLabel === 'Code from your authenticator app', `label is "${codeLabel}"`);
  check('totp:recovery-form', (await page.locator('#recovery_code').count()) === 1, 'no #recovery_code input');
  await inspect('03-totp');
  await expectFocus('totp:autofocus-code', { tag: 'input', id: 'code' });
  const step = currentStep();
  await page.keyboard.type(totp(totpSecret, step));
  await enterAndWait();
  if ((await h1()) === 'Two-step verification') {
    const refused = oneLine(await page.locator('[role="alert"]').first().textContent({ timeout: 2000 }).catch(() => ''));
    must('totp:refusal-says-why', refused === 'That code is not valid.', `page says "${refused}"`);
    note(`the code of step ${step} was refused (already used, e.g. at enrolment); trying the next step's`);
    await inspect('03b-totp-error');
    await expectFocus('totp-retry:autofocus-code', { tag: 'input', id: 'code' });
    await page.keyboard.type(totp(totpSecret, step + 1));
    await enterAndWait();
  }
  ok('totp:accepted');

  // ---- 4. choose a workspace
  await expectStep('tenant', 'Choose a workspace', 200);
  const choices = await page.locator('fieldset button[name="tenant"]').evaluateAll((buttons) => buttons.map((b) => b.value));
  must('tenant:choices', choices.includes(args.tenant) && choices.length >= 2,
    `the buttons offer ${JSON.stringify(choices)}; expected ${args.tenant} among several`);
  await inspect('04-tenant');
  await tabTo('tenant:tab-to-choice', { tag: 'button', name: 'tenant', value: args.tenant });
  await enterAndWait();

  // ---- 4b. allow a third-party client
  if (args.consent === 'allow') {
    await expectStep('consent', 'Allow access?', 200);
    await inspect('04b-consent');
    await tabTo('consent:tab-to-allow', { tag: 'button', name: 'decision', value: 'allow' });
    await enterAndWait();
  } else if (args.consent !== undefined) {
    throw new Error('--consent takes only allow');
  }

  // ---- 5. back at the client
  const back = new URL(page.url());
  if (clientLanding.length === 0) note('nothing was intercepted at the redirect URI');
  must('redirect:to-client', back.origin === redirectUri.origin && back.pathname === redirectUri.pathname,
    `ended at ${where(page.url())} (${await h1()})`);
  const code = back.searchParams.get('code');
  const error = back.searchParams.get('error');
  must('redirect:code', !!code, `no code; error=${error} ${back.searchParams.get('error_description') ?? ''}`);
  codeReceived = true;
  check('redirect:state', back.searchParams.get('state') === state, `state is ${back.searchParams.get('state')}, sent ${state}`);
  issuer = back.searchParams.get('iss');
  const discovery = await context.request
    .get(`${args.base}/.well-known/openid-configuration`)
    .then((r) => (r.ok() ? r.json() : null))
    .catch(() => null);
  if (discovery?.issuer) check('redirect:iss', issuer === discovery.issuer, `iss is ${issuer}, the discovery document says ${discovery.issuer}`);
  else check('redirect:iss', !!issuer, 'no iss parameter');
  note(`iss=${issuer}`);

  // ---- 6. sign out
  await page.goto(new URL('/oauth2/logout', args.base).toString(), { waitUntil: 'load' });
  await expectStep('logout', 'Sign out', 200);
  await inspect('05-logout');
  await tabTo('logout:tab-to-button', { tag: 'button', text: 'Sign out' });
  await enterAndWait();
  await expectStep('signed-out', 'Signed out', 200);
  await inspect('06-signed-out');
  const cookies = await context.cookies(args.base);
  check('signed-out:session-cookie-gone', !cookies.some((c) => c.name === 'ue_session' && c.value),
    `cookies: ${cookies.map((c) => c.name).join(', ')}`);

  await Promise.allSettled(cspChecks);
  check('csp:responses-seen', cspChecks.length >= 6, `only ${cspChecks.length} page responses seen`);
}

main()
  .then(async () => {
    await Promise.allSettled(cspChecks);
    finish(results.every((r) => r.ok) && results.length > 0 ? 0 : 1);
  })
  .catch((error) => {
    // After the hard timeout the browser is closed under the flow: that is no news.
    if (!finished && !(error instanceof FlowError)) {
      // Playwright's first line says what failed; its call log follows on the next lines.
      const message = String(error?.message ?? error).split('\n')[0].replace(/\x1b\[[0-9;]*m/g, '');
      fail('flow', message.replace(/^(.* at )(\S+)$/, (_, head, url) => head + where(url)));
    }
    finish(1);
  });

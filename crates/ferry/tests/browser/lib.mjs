// Shared helpers for the browser tests: run `ferry app`, launch Debian's
// chromium through playwright-core (never a downloaded browser), count
// content security policy violations and page errors.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.FERRY_CHROMIUM ?? '/usr/bin/chromium';
export const FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export const problems = [];

/// Fails the test with a message.
export function check(ok, message) {
  if (!ok) throw new Error(`check failed: ${message}`);
}

/// Starts `ferry app --no-open --json` for a profile; resolves with its
/// launch URL and the process.
export function startApp(bin, home, extra = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--home', home, '--json', 'app', '--no-open', ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    const lines = createInterface({ input: child.stdout });
    const links = [];
    lines.on('line', (line) => {
      const l = JSON.parse(line);
      if (l.type === 'app') {
        links.push(l.url);
        if (links.length === 1) resolve({ url: l.url, child, links, stderr: () => err });
      }
    });
    child.on('exit', (code) => reject(new Error(`ferry app exited with ${code}: ${err}`)));
  });
}

/// Stops an app with SIGINT (it locks and exits), SIGKILL after 10 s.
export async function stopApp(app) {
  const { child } = app;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/// A browser of its own (as a second person would have), with a locale.
export async function browser(locale, opts = {}) {
  const b = await chromium.launch({ executablePath: CHROMIUM, args: [...FLAGS, ...(opts.args ?? [])] });
  const context = await b.newContext({
    locale,
    permissions: opts.permissions ?? [],
    viewport: opts.viewport ?? { width: 1280, height: 900 },
    colorScheme: opts.colorScheme ?? 'light',
  });
  const page = await context.newPage();
  watch(page, locale);
  return { browser: b, context, page };
}

/// Records CSP violations, console errors and page errors.
export function watch(page, who) {
  page.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to/i.test(t)) problems.push(`${who}: CSP: ${t}`);
    else if (m.type() === 'error' && !/Failed to load resource/.test(t)) problems.push(`${who}: console: ${t}`);
  });
  page.on('pageerror', (e) => problems.push(`${who}: page error: ${e.message}`));
}

/// Creates a profile through the first screen.
export async function createProfile(page, url, relay, passphrase) {
  if (url) await page.goto(url);
  await ready(page);
  await page.locator('#relay').fill(relay);
  await page.locator('#passphrase').fill(passphrase);
  await page.locator('#repeat').fill(passphrase);
  await page.locator('form[action="/setup"] button[type=submit]').click();
  // Creating a profile derives keys with Argon2id: slow on a loaded machine.
  await page.locator('#chats').waitFor({ timeout: 90_000 });
}

/// Waits until the page's script has wired its forms (the launch link
/// moves on to `/` by a meta refresh, so `goto` returns before that).
export async function ready(page) {
  await page.waitForFunction(() => document.documentElement.dataset.ready === '1', null, { timeout: 60_000 });
}

/// Pairs two pages: `a` invites, `b` accepts. Returns both conversation URLs.
export async function pair(a, b, aliasForB, aliasForA) {
  await a.goto(new URL('/invite', a.url()).href);
  await a.locator('#alias').fill(aliasForB);
  await a.locator('form[action="/invite"] button[type=submit]').click();
  const link = await a.locator('textarea#link').inputValue();
  check(link.startsWith('ferry://invite/'), `an invite link is shown (${link.slice(0, 20)})`);
  check((await a.locator('svg.qr').count()) === 1, 'a QR code is shown');
  await b.goto(new URL('/accept', b.url()).href);
  await b.locator('#link').fill(link);
  await b.locator('#alias').fill(aliasForA);
  await b.locator('form[action="/accept"] button[type=submit]').click();
  await b.waitForURL(/\/c\/\d+$/);
  // Both sides see the compose box once the handshake is done.
  await b.locator('form.compose textarea').waitFor({ timeout: 30_000 });
  await a.goto(new URL('/', a.url()).href);
  await a.locator('ul.chats a', { hasText: aliasForB }).click();
  await a.locator('form.compose textarea').waitFor({ timeout: 30_000 });
  return { a: a.url(), b: b.url() };
}

/// Types a message and sends it with Enter.
export async function sendText(page, text, { viewOnce = false } = {}) {
  await ready(page);
  const box = page.locator('form.compose textarea');
  await box.fill(text);
  if (viewOnce) await page.locator('form.compose input[name=view_once]').check();
  await box.press('Enter');
  await page.waitForFunction(() => document.querySelector('form.compose textarea').value === '');
}

/// Waits for a message text in the conversation list.
export async function seeText(page, text, timeout = 20_000) {
  await page.locator('ol.messages .text', { hasText: text }).first().waitFor({ timeout });
}

/// Waits until no message holds `text`.
export async function goneText(page, text, timeout = 60_000) {
  await page.locator('ol.messages .text', { hasText: text }).first().waitFor({ state: 'detached', timeout });
}

/// Runs a test body; on failure saves a screenshot of each page and
/// prints what went wrong; always closes the browsers and stops the apps.
/// Fails on any CSP violation or page error. `body` may return a note for
/// the success line.
export async function scenario(name, { work, pages, apps, browsers }, body) {
  try {
    const note = await body();
    check(problems.length === 0, `no CSP violations or page errors:\n${problems.join('\n')}`);
    console.log(`browser ${name}: ok${note ? ` (${note})` : ''}`);
  } catch (e) {
    for (const [who, page] of Object.entries(pages)) {
      await page.screenshot({ path: join(work, `fail-${who}.png`), fullPage: true }).catch(() => {});
      // The work directory goes with the test: say what each page showed.
      const text = await page.locator('body').innerText({ timeout: 2_000 }).catch(() => '(no text)');
      console.error(`${who} was at ${page.url()} showing:\n${text.slice(0, 1500)}\n`);
    }
    console.error(problems.join('\n'));
    for (const app of apps) console.error(app.stderr());
    throw e;
  } finally {
    for (const b of browsers) await b.close();
    // Each app locks and exits; none is left running into the next test.
    await Promise.all(apps.map((app) => stopApp(app)));
  }
}

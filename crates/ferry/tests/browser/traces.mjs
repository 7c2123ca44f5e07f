// What the browser keeps on disk after a session: a real, persistent
// user-data directory (launchPersistentContext), used the way a person
// would (create a profile, pair, chat, view-once, lock), then closed. A
// byte scan of every file in it finds no message text, alias, invite
// link or passphrase, in UTF-8 or UTF-16. Positive control: the same scan
// finds what the browser does store (the address visited).
//
// Run by crates/ferry/tests/browser.rs with FERRY_BIN, RELAY_URL, WORK.

import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import {
  browser, check, CHROMIUM, createProfile, FLAGS, pair, problems, seeText, sendText, startApp, watch,
} from './lib.mjs';

const bin = process.env.FERRY_BIN;
const relay = process.env.RELAY_URL;
const work = process.env.WORK ?? mkdtempSync('/tmp/ferry-browser-');
const userData = join(work, 'chromium-profile');
const tag = Math.random().toString(36).slice(2, 10);

const secrets = {
  passphrase: `passphrase-${tag}-secret`,
  alias: `alias${tag}contact`,
  aliasKo: `비밀친구${tag}`,
  text: `message-${tag}-text`,
  textKo: `비밀 메시지 ${tag}`,
  once: `viewonce-${tag}-text`,
  typed: `unsent-draft-${tag}`,
};

const appA = await startApp(bin, join(work, 'a'));
const appB = await startApp(bin, join(work, 'b'));
const persistent = await chromium.launchPersistentContext(userData, {
  executablePath: CHROMIUM,
  args: FLAGS,
  locale: 'ko-KR',
  viewport: { width: 1280, height: 860 },
});
const a = persistent.pages()[0] ?? (await persistent.newPage());
watch(a, 'persistent');
const other = await browser('en-US');
const b = other.page;
let link = '';
let origin = '';

try {
  await createProfile(a, appA.url, relay, secrets.passphrase);
  origin = new URL(a.url()).origin;
  await createProfile(b, appB.url, relay, 'other passphrase 1');
  // Pairing by hand, to keep the link.
  await a.goto(`${origin}/invite`);
  await a.locator('#alias').fill(secrets.alias);
  await a.locator('form[action="/invite"] button[type=submit]').click();
  link = await a.locator('textarea#link').inputValue();
  await b.goto(new URL('/accept', b.url()).href);
  await b.locator('#link').fill(link);
  await b.locator('#alias').fill(secrets.aliasKo);
  await b.locator('form[action="/accept"] button[type=submit]').click();
  await b.locator('form.compose textarea').waitFor({ timeout: 30_000 });
  await a.goto(`${origin}/`);
  await a.locator('ul.chats a', { hasText: secrets.alias }).click();
  await a.locator('form.compose textarea').waitFor({ timeout: 30_000 });
  await sendText(a, secrets.text);
  await sendText(b, secrets.textKo);
  await seeText(a, secrets.textKo);
  await sendText(b, secrets.once, { viewOnce: true });
  await a.locator('ol.messages form[action$="/open"] button').click();
  await a.locator('#reveal .text', { hasText: secrets.once }).waitFor();
  // A draft typed but never sent.
  await a.locator('form.compose textarea').fill(secrets.typed);
  await a.reload();
  await a.locator('form.compose textarea').waitFor();
  // Lock, as a person leaving would.
  await a.locator('form[action="/lock"] button').click();
  await a.locator('#passphrase').waitFor();
  check(problems.length === 0, problems.join('\n'));
} finally {
  await persistent.close();
  await other.browser.close();
  appA.child.kill('SIGINT');
  appB.child.kill('SIGINT');
}

function files(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

const all = files(userData).map((p) => ({ p, bytes: readFileSync(p) }));
const total = all.reduce((n, f) => n + statSync(f.p).size, 0);
function found(needle) {
  const forms = [Buffer.from(needle, 'utf8'), Buffer.from(needle, 'utf16le')];
  return all.filter((f) => forms.some((n) => f.bytes.includes(n))).map((f) => f.p.slice(userData.length));
}

// Positive control: the browser did write what it writes (its history of
// addresses visited), and the scan sees it.
const host = new URL(origin).host;
const control = found(host);
check(control.length > 0, `the scan finds the visited address ${host} (${all.length} files, ${total} bytes)`);

const leaks = [];
for (const [what, value] of Object.entries({ ...secrets, link, linkBody: link.slice(18, 60) })) {
  const where = found(value);
  if (where.length > 0) leaks.push(`${what} found in ${where.join(', ')}`);
}
check(leaks.length === 0, `the browser kept secrets on disk:\n${leaks.join('\n')}`);
console.log(`browser traces: ok (${all.length} files, ${total} bytes scanned; address found in ${control.length})`);

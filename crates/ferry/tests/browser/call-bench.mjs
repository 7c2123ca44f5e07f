// Benchmark (crates/ferry/benches/call_setup.rs): "Call" pressed in one
// browser → connected, the other side accepting as soon as it rings.
// Prints p50/p90/max in ms over CALLS calls.

import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { browser, createProfile, pair, startApp } from './lib.mjs';
import { connected, instrument, mediaOptions } from './call-lib.mjs';

const bin = process.env.FERRY_BIN;
const relay = process.env.RELAY_URL;
const work = process.env.WORK ?? mkdtempSync('/tmp/ferry-bench-');
const calls = Number(process.env.CALLS ?? 20);
const media = mediaOptions(work);

const appA = await startApp(bin, join(work, 'a'));
const appB = await startApp(bin, join(work, 'b'));
const one = await browser('en-US', media);
const two = await browser('en-US', media);
const a = one.page;
const b = two.page;
await instrument(one.context);
await instrument(two.context);
try {
  await createProfile(a, appA.url, relay, 'first passphrase 1');
  await createProfile(b, appB.url, relay, 'second passphrase 1');
  await pair(a, b, 'B', 'A');
  const times = [];
  for (let i = 0; i < calls; i++) {
    const before = await a.evaluate(() => window.__pcs.length);
    const t0 = Date.now();
    await a.getByRole('button', { name: 'Call', exact: true }).click();
    await b.locator('#call [role=status]', { hasText: 'Incoming call' }).waitFor({ timeout: 30_000 });
    await b.getByRole('button', { name: 'Accept', exact: true }).click();
    await a.waitForFunction((n) => window.__pcs.length > n, before);
    await connected(a);
    times.push(Date.now() - t0);
    await a.getByRole('button', { name: 'Hang up', exact: true }).click();
    await b.locator('#call').waitFor({ state: 'hidden', timeout: 20_000 });
    await a.locator('#call').waitFor({ state: 'hidden', timeout: 20_000 });
  }
  times.sort((x, y) => x - y);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  console.log(`call set-up ("Call" → connected), ${calls} calls on loopback: p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, max ${times.at(-1)} ms`);
} finally {
  await one.browser.close();
  await two.browser.close();
  appA.child.kill('SIGINT');
  appB.child.kill('SIGINT');
}

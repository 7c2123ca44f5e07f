// Benchmark: "send" pressed in one browser → the message visible in the
// other, over N messages (default 200) on loopback; prints p50, p90, p99
// and max. Run by `cargo bench -p ferry --bench app_latency`.

import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { browser, createProfile, pair, startApp } from './lib.mjs';

const bin = process.env.FERRY_BIN;
const relay = process.env.RELAY_URL;
const work = process.env.WORK ?? mkdtempSync('/tmp/ferry-bench-');
const n = Number(process.env.MESSAGES ?? 200);

const appA = await startApp(bin, join(work, 'a'));
const appB = await startApp(bin, join(work, 'b'));
const x = await browser('ko-KR');
const y = await browser('en-US');
const a = x.page;
const b = y.page;
try {
  await createProfile(a, appA.url, relay, 'bench passphrase a');
  await createProfile(b, appB.url, relay, 'bench passphrase b');
  await pair(a, b, 'b', 'a');
  const box = a.locator('form.compose textarea');
  const times = [];
  for (let i = 0; i < n; i++) {
    const text = `메시지 ${i} bench`;
    await box.fill(text);
    const t0 = performance.now();
    await box.press('Enter');
    await b.locator('ol.messages .text', { hasText: text }).waitFor({ timeout: 30_000 });
    times.push(performance.now() - t0);
  }
  times.sort((p, q) => p - q);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(1);
  console.log(`send clicked -> visible in the other browser, ${n} messages: p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, p99 ${at(0.99)} ms, max ${times[times.length - 1].toFixed(1)} ms`);
} finally {
  await x.browser.close();
  await y.browser.close();
  appA.child.kill('SIGINT');
  appB.child.kill('SIGINT');
}

// A voice note recorded in the browser from a fake microphone (a WAV file
// fed to Chromium with --use-file-for-fake-audio-capture), captured as PCM
// by an AudioWorklet, encoded with Opus by the client, and played in the
// other browser.
//
// Run by crates/ferry/tests/browser.rs with FERRY_BIN, RELAY_URL, WORK.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { browser, scenario, check, createProfile, pair, problems, startApp } from './lib.mjs';

const bin = process.env.FERRY_BIN;
const relay = process.env.RELAY_URL;
const work = process.env.WORK ?? mkdtempSync('/tmp/ferry-browser-');

// 4 s of a 440 Hz tone, 48 kHz mono 16-bit.
const rate = 48_000;
const n = rate * 4;
const wav = Buffer.alloc(44 + n * 2);
wav.write('RIFF', 0); wav.writeUInt32LE(36 + n * 2, 4); wav.write('WAVE', 8);
wav.write('fmt ', 12); wav.writeUInt32LE(16, 16); wav.writeUInt16LE(1, 20); wav.writeUInt16LE(1, 22);
wav.writeUInt32LE(rate, 24); wav.writeUInt32LE(rate * 2, 28); wav.writeUInt16LE(2, 32); wav.writeUInt16LE(16, 34);
wav.write('data', 36); wav.writeUInt32LE(n * 2, 40);
for (let i = 0; i < n; i++) wav.writeInt16LE(Math.round(Math.sin((2 * Math.PI * 440 * i) / rate) * 12_000), 44 + i * 2);
const tone = join(work, 'tone.wav');
writeFileSync(tone, wav);

const appA = await startApp(bin, join(work, 'a'));
const appB = await startApp(bin, join(work, 'b'));
const ko = await browser('ko-KR', {
  args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${tone}`],
  permissions: ['microphone'],
});
const en = await browser('en-US');
const a = ko.page;
const b = en.page;

await scenario('voice', { work, pages: { a, b }, apps: [appA, appB], browsers: [ko.browser, en.browser] }, async () => {
  await createProfile(a, appA.url, relay, 'voice passphrase a');
  await createProfile(b, appB.url, relay, 'voice passphrase b');
  await pair(a, b, 'b', 'a');
  const rec = a.locator('form.voice button[data-record]');
  check((await rec.textContent()) === '음성 메시지 녹음', 'the record button has a Korean name');
  await rec.click();
  await a.locator('form.voice [data-recording]', { hasText: '녹음 중' }).waitFor();
  check((await rec.getAttribute('aria-pressed')) === 'true', 'the button says it is recording');
  await a.waitForTimeout(2500);
  await rec.click();
  const audio = b.locator('ol.messages li.msg audio');
  await audio.waitFor({ timeout: 30_000 });
  await b.waitForFunction(() => {
    const el = document.querySelector('ol.messages li.msg audio');
    return el && el.readyState >= 1 && Number.isFinite(el.duration) && el.duration > 1.5;
  }, null, { timeout: 30_000 });
  const duration = await audio.evaluate((el) => el.duration);
  check(duration < 10, `the note lasts about as long as it was recorded (${duration} s)`);
  await audio.evaluate(async (el) => { el.muted = true; await el.play(); });
  await b.waitForFunction(() => document.querySelector('ol.messages li.msg audio').currentTime > 0.2, null, { timeout: 15_000 });
  // The sender sees it too.
  await a.locator('ol.messages li.msg.out audio').waitFor();
  return `${duration.toFixed(2)} s note`;
});


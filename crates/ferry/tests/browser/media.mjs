// Attachments in the app: a photo and a short video picked in one browser
// play inline in the other, decrypted by the client and streamed with
// Range (206 answers); a plain file shows its name and size; "save to
// device" says the file leaves Ferry's protection before it offers the
// link; deleting the message for both takes the picture away.
//
// Run by crates/ferry/tests/browser.rs with FERRY_BIN, RELAY_URL, WORK.

import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { browser, scenario, check, createProfile, pair, problems, startApp } from './lib.mjs';

const bin = process.env.FERRY_BIN;
const relay = process.env.RELAY_URL;
const work = process.env.WORK ?? mkdtempSync('/tmp/ferry-browser-');

const appA = await startApp(bin, join(work, 'a'));
const appB = await startApp(bin, join(work, 'b'));
const ko = await browser('ko-KR');
const en = await browser('en-US');
const a = ko.page;
const b = en.page;
const partial = [];
b.on('response', (r) => {
  if (r.url().includes('/media/')) partial.push(r.status());
});

/// A short video recorded in the page from a canvas (MP4 when this
/// Chromium can record it, else WebM).
async function recordVideo(page) {
  const { bytes, type } = await page.evaluate(async () => {
    const c = document.createElement('canvas');
    c.width = 160;
    c.height = 120;
    const ctx = c.getContext('2d');
    const type = ['video/mp4;codecs=avc1', 'video/mp4', 'video/webm'].find((t) => MediaRecorder.isTypeSupported(t));
    const rec = new MediaRecorder(c.captureStream(25), { mimeType: type });
    const chunks = [];
    rec.ondataavailable = (e) => chunks.push(e.data);
    rec.start(100);
    for (let i = 0; i < 40; i++) {
      ctx.fillStyle = `hsl(${i * 9}, 80%, 50%)`;
      ctx.fillRect(0, 0, 160, 120);
      await new Promise((r) => setTimeout(r, 30));
    }
    const stopped = new Promise((r) => { rec.onstop = r; });
    rec.stop();
    await stopped;
    const blob = new Blob(chunks, { type });
    return { bytes: Array.from(new Uint8Array(await blob.arrayBuffer())), type: type.split(';')[0] };
  });
  return { buffer: Buffer.from(bytes), type };
}

async function sendFile(page, name, mimeType, buffer) {
  await page.locator('form.attach input[type=file]').setInputFiles({ name, mimeType, buffer });
  await page.locator('form.attach button[type=submit]').click();
  await page.waitForFunction(() => document.querySelector('form.attach input[type=file]').value === '');
}

await scenario('media', { work, pages: { a, b }, apps: [appA, appB], browsers: [ko.browser, en.browser] }, async () => {
  await createProfile(a, appA.url, relay, 'media passphrase a');
  await createProfile(b, appB.url, relay, 'media passphrase b');
  await pair(a, b, 'b', 'a');

  // A photo: a real PNG (a screenshot of the page itself).
  const png = await a.screenshot({ clip: { x: 0, y: 0, width: 320, height: 200 } });
  await sendFile(a, 'screen.png', 'image/png', png);
  const img = b.locator('ol.messages img.photo');
  await img.waitFor({ timeout: 30_000 });
  await b.waitForFunction(() => {
    const i = document.querySelector('ol.messages img.photo');
    return i && i.complete && i.naturalWidth === 320;
  }, null, { timeout: 30_000 });
  check((await img.getAttribute('alt')) === 'Photo', 'the photo has a text alternative');

  // A short video, played inline.
  const video = await recordVideo(a);
  console.log(`video: ${video.type}, ${video.buffer.length} bytes`);
  await sendFile(a, `clip.${video.type === 'video/mp4' ? 'mp4' : 'webm'}`, video.type, video.buffer);
  const v = b.locator('ol.messages video.video');
  await v.waitFor({ timeout: 30_000 });
  await b.waitForFunction(() => {
    const el = document.querySelector('ol.messages video.video');
    return el && el.readyState >= 1 && el.videoWidth === 160;
  }, null, { timeout: 30_000 });
  await v.evaluate(async (el) => {
    el.muted = true;
    await el.play();
  });
  await b.waitForFunction(() => document.querySelector('ol.messages video.video').currentTime > 0, null, { timeout: 15_000 });
  check(partial.includes(206), `the media was streamed with Range (statuses ${[...new Set(partial)]})`);

  // A plain file: name and size, no inline player.
  await sendFile(a, 'notes.txt', 'text/plain', Buffer.from('meeting at eight\n'));
  await b.locator('ol.messages .attachment', { hasText: 'notes.txt' }).waitFor({ timeout: 30_000 });

  // A view-once photo: hidden until opened, shown once, then gone.
  await a.locator('form.attach input[name=view_once]').check();
  await sendFile(a, 'once.png', 'image/png', png);
  const openOnce = b.locator('ol.messages form[action$="/open-media"] button');
  await openOnce.waitFor({ timeout: 30_000 });
  check((await b.locator('ol.messages img.photo').count()) === 1, 'the view-once photo is not shown inline');
  await openOnce.click();
  await b.waitForFunction(() => {
    const i = document.querySelector('#reveal img.photo');
    return i && i.complete && i.naturalWidth === 320;
  }, null, { timeout: 30_000 });
  const onceSrc = await b.locator('#reveal img.photo').getAttribute('src');
  await b.locator('#reveal form[action$="/close-once"] button').click();
  await b.locator('#reveal img').waitFor({ state: 'detached' });
  check((await b.evaluate(async (src) => (await fetch(src)).status, onceSrc)) === 404, 'closed: it cannot be fetched again');
  await b.reload();
  await b.locator('ol.messages img.photo').first().waitFor();
  check((await b.locator('ol.messages form[action$="/open-media"]').count()) === 0, 'the view-once message is gone');

  // Saving warns first.
  const save = b.locator('ol.messages li.msg', { has: b.locator('img.photo') }).locator('details.export');
  await save.locator('summary').click();
  check((await save.locator('.hint').textContent()).includes("leaves Ferry's protection"), 'the export warns');
  const [download] = await Promise.all([b.waitForEvent('download'), save.locator('a').click()]);
  check((await download.suggestedFilename()) === 'image.png', `saved as ${await download.suggestedFilename()}`);

  // Delete for both: the picture goes on both sides.
  const photoSrc = await img.getAttribute('src');
  check((await b.evaluate(async (src) => (await fetch(src)).status, photoSrc)) === 200, 'the picture is served before');
  const mine = a.locator('ol.messages li.msg', { has: a.locator('img.photo') });
  await mine.locator('form.delete button').click();
  await b.locator('ol.messages img.photo').waitFor({ state: 'detached', timeout: 20_000 });
  const gone = await b.evaluate(async (src) => (await fetch(src)).status, photoSrc);
  check(gone === 404, `the picture cannot be fetched any more (${gone})`);
});


// Calls between two app instances in two Chromium processes with fake
// devices, through the relay's TURN server (RELAY_TURN, on 127.0.0.2 while
// the browsers are on 127.0.0.1): voice, then video. What is checked is
// what a captor on the TURN server or the network, or a hostile contact,
// could use:
// - every description that crosses (what the other page is handed) has
//   relayed candidates at the TURN address only, related addresses zeroed,
//   and no browser address anywhere;
// - the selected candidate pair is relay/relay on both sides;
// - DTLS is connected with the fingerprint that came inside MLS;
// - audio and video flow (packets and decoded frames counted);
// - hanging up releases the TURN allocations;
// - a contact reported compromised cannot be called, their call never
//   rings, asks for no TURN credentials and no camera or microphone, and
//   a warning that arrives mid-call hangs up.
//
// Run by crates/ferry/tests/browser.rs with FERRY_BIN, RELAY_URL,
// RELAY_TURN, WORK.

import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { browser, check, createProfile, pair, scenario, startApp } from './lib.mjs';
import { connected, instrument, mediaOptions, metric as relayMetric, record, stats } from './call-lib.mjs';

const bin = process.env.FERRY_BIN;
const relay = process.env.RELAY_URL;
const turnIp = (process.env.RELAY_TURN ?? '').split(':')[0];
const work = process.env.WORK ?? mkdtempSync('/tmp/ferry-browser-');
check(turnIp && turnIp !== '127.0.0.1', `the TURN server is on its own address (${turnIp})`);
const media = mediaOptions(work);
const metric = (name) => relayMetric(relay, name);

function fingerprintOf(sdp) {
  const m = /a=fingerprint:sha-256 ([0-9A-F:]+)/.exec(sdp);
  return m?.[1];
}

/// Every description handed over is relay-only at the TURN address.
function checkRemote(descs, who) {
  check(descs.length > 0, `${who} was handed the contact's description`);
  for (const sdp of descs) {
    check(!sdp.includes('127.0.0.1'), `${who}: no browser address in a description`);
    const cands = sdp.split('\r\n').filter((l) => l.startsWith('a=candidate:'));
    check(cands.length > 0, `${who}: candidates present`);
    for (const c of cands) {
      const f = c.split(' ');
      check(f[7] === 'relay', `${who}: relay candidates only (${f[7]})`);
      check(f[4] === turnIp, `${who}: at the TURN address (${f[4]})`);
      const raddr = f.indexOf('raddr');
      if (raddr >= 0) check(f[raddr + 1] === '0.0.0.0' && f[f.indexOf('rport') + 1] === '0', `${who}: related address zeroed`);
    }
    check(!/audio-level/.test(sdp), `${who}: no audio-level extension`);
    check(/cbr=1/.test(sdp) && /useinbandfec=1/.test(sdp), `${who}: constant-bitrate Opus with FEC`);
  }
}

const appA = await startApp(bin, join(work, 'jiyoung'));
const appB = await startApp(bin, join(work, 'minsu'));
const ko = await browser('ko-KR', media);
const en = await browser('en-US', media);
const a = ko.page;
const b = en.page;
await instrument(ko.context);
await instrument(en.context);
const seenA = record(a);
const seenB = record(b);
const timings = [];

/// A calls B (the "Call" or "Video call" button), B accepts; checks the
/// connection on both sides; returns B's stats after 10 s and hangs up.
async function call(video) {
  const remoteA = seenA.remote.length;
  const remoteB = seenB.remote.length;
  const gumAtStart = await b.evaluate(() => window.__gum);
  const startedAt = Date.now();
  await a.getByRole('button', { name: video ? '영상 통화' : '전화', exact: true }).click();
  await b.locator('#call:not([hidden]) [role=status]', { hasText: video ? 'Incoming video call' : 'Incoming call' }).waitFor({ timeout: 20_000 });
  await b.waitForTimeout(500);
  const gumBefore = await b.evaluate(() => window.__gum);
  check(gumBefore === gumAtStart, 'nothing is asked of the camera or microphone while it rings');
  await b.getByRole('button', { name: 'Accept', exact: true }).click();
  const sb = await connected(b);
  const sa = await connected(a);
  timings.push(Date.now() - startedAt);
  check(await b.evaluate(() => window.__gum) === gumBefore + 1, 'the camera and microphone are asked for once, on accept');
  for (const [who, s] of [['A', sa], ['B', sb]]) {
    check(s.local.candidateType === 'relay' && s.remote.candidateType === 'relay', `${who}: the selected pair is relay/relay`);
    check(s.local.address === turnIp && s.remote.address === turnIp, `${who}: both ends at the TURN address`);
    check(s.algorithm === 'sha-256', `${who}: SHA-256 certificate fingerprint (${s.algorithm})`);
  }
  checkRemote(seenA.remote.slice(remoteA), 'A');
  checkRemote(seenB.remote.slice(remoteB), 'B');
  // DTLS is connected on both sides, each with the certificate whose
  // fingerprint the other was handed after the MLS trip: the fingerprint
  // each side checked DTLS against came inside MLS.
  check(sa.fingerprint === fingerprintOf(seenB.remote.at(-1)), "A's DTLS certificate is the one B was handed");
  check(sb.fingerprint === fingerprintOf(seenA.remote.at(-1)), "B's DTLS certificate is the one A was handed");
  // The embedded server reports its allocations (coturn's log is read by
  // the test that runs this script against it).
  const embedded = !Number.isNaN(await metric('ferry_turn_allocations'));
  if (embedded) check(await metric('ferry_turn_allocations') >= 2, 'both sides hold TURN allocations');
  const before = await stats(b);
  await b.waitForTimeout(10_000);
  const after = await stats(b);
  const packets = after.audioPackets - before.audioPackets;
  const frames = after.framesDecoded;
  check(packets > 250, `more than 250 audio packets in 10 s (${packets})`);
  if (video) check(frames > 100, `more than 100 video frames decoded (${frames})`);
  if (video) {
    // The network changes under the call: A restarts ICE; the new offer
    // and answer go through MLS and the call carries on.
    const ufrags = (p) => p.evaluate(() => {
      const pc = window.__pcs.at(-1);
      const u = (d) => /a=ice-ufrag:(\S+)/.exec(d?.sdp ?? '')?.[1];
      return [u(pc.localDescription), u(pc.remoteDescription)];
    });
    const [localBefore, remoteBefore] = await ufrags(a);
    const handedBefore = seenB.remote.length;
    await a.evaluate(() => window.dispatchEvent(new Event('online')));
    let restarted = false;
    for (let i = 0; i < 100 && !restarted; i++) {
      await a.waitForTimeout(100);
      const [l, r] = await ufrags(a);
      restarted = l !== localBefore && r !== remoteBefore && seenB.remote.length > handedBefore;
    }
    check(restarted, 'an ICE restart renews both sides\' ICE credentials through MLS');
    checkRemote(seenB.remote.slice(handedBefore), 'B (restart)');
    await connected(a);
    await connected(b);
  }
  await a.getByRole('button', { name: '끊기', exact: true }).click();
  await b.locator('#call [role=status]', { hasText: 'Call ended' }).waitFor({ timeout: 20_000 });
  if (embedded) {
    let left = NaN;
    for (let i = 0; i < 100; i++) {
      left = await metric('ferry_turn_allocations');
      if (left === 0) break;
      await a.waitForTimeout(100);
    }
    check(left === 0, `hanging up releases the TURN allocations (${left} left)`);
  }
  return { packets, frames };
}

await scenario('call', { work, pages: { a, b }, apps: [appA, appB], browsers: [ko.browser, en.browser] }, async () => {
  await createProfile(a, appA.url, relay, 'jiyoung passphrase 1');
  await createProfile(b, appB.url, relay, 'minsu passphrase 1');
  await pair(a, b, '민수', 'Jiyoung');
  // Accessible names in both languages.
  for (const [p, names] of [[a, ['전화', '영상 통화']], [b, ['Call', 'Video call']]]) {
    for (const n of names) check((await p.getByRole('button', { name: n, exact: true }).count()) === 1, `a "${n}" button`);
  }
  const voice = await call(false);
  const video = await call(true);
  // Both calls are in both histories.
  await b.locator('ol.messages .call-log', { hasText: 'Video call ·' }).waitFor({ timeout: 10_000 });
  check((await a.locator('ol.messages .call-log', { hasText: '통화 ·' }).count()) >= 1, 'A has the voice call in the history');
  const summary = () => {
    const sorted = [...timings].sort((x, y) => x - y);
    return `voice ${voice.packets} audio packets/10 s; video ${video.frames} frames decoded; call to connected ${sorted.join(', ')} ms`;
  };
  if (process.env.CALL_VOICE_VIDEO_ONLY) return summary();

  // A warns everyone in the middle of a call: B's side hangs up at once.
  await a.getByRole('button', { name: '전화', exact: true }).click();
  await b.locator('#call [role=status]', { hasText: 'Incoming call' }).waitFor({ timeout: 20_000 });
  check((await b.getByRole('button', { name: 'Hang up', exact: true }).count()) === 0, 'only Accept and Decline while it rings');
  await b.getByRole('button', { name: 'Accept', exact: true }).click();
  await connected(b);
  const safety = await ko.context.newPage();
  await safety.goto(new URL('/safety', a.url()).href);
  await safety.locator('form[action="/safety/alert"] button').click();
  await b.locator('#call [role=status]', { hasText: 'Call ended' }).waitFor({ timeout: 20_000 });
  check(await b.evaluate(() => window.__pcs.at(-1).connectionState === 'closed'), "B's connection is closed");
  await safety.close();
  await a.getByRole('button', { name: '끊기', exact: true }).click().catch(() => {});
  await b.locator('#call').waitFor({ state: 'hidden', timeout: 10_000 });

  // B cannot call A any more: no buttons, and the client refuses.
  await b.reload();
  check((await b.getByRole('button', { name: 'Call', exact: true }).count()) === 0, 'no call button for a compromised contact');
  const n = new URL(b.url()).pathname.split('/')[2];
  const refused = await b.evaluate(async (id) => {
    const csrf = document.querySelector('meta[name="csrf"]').content;
    const r = await fetch(`/c/${id}/call/turn`, { method: 'POST', headers: { 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' }, body: '{}' });
    return [r.status, (await r.json()).error];
  }, n);
  check(refused[0] === 422 && refused[1] === 'contact_compromised', `the client refuses to call them (${refused})`);

  // A (the captor, say) calls B: it never rings; B asks for no TURN
  // credentials and no camera or microphone; B's history records it,
  // marked.
  const turnBefore = seenB.turn;
  const acceptBefore = seenB.accept;
  const gumBefore = await b.evaluate(() => window.__gum);
  const issuedBefore = await metric('ferry_turn_credentials_total');
  await a.getByRole('button', { name: '전화', exact: true }).click();
  await b.locator('li.msg.flagged .call-log', { hasText: 'Call refused' }).waitFor({ timeout: 20_000 });
  await b.waitForTimeout(1000);
  check(await b.locator('#call').isHidden(), 'nothing rings');
  check(seenB.turn === turnBefore && seenB.accept === acceptBefore, 'B asked for no TURN credentials');
  check(await b.evaluate(() => window.__gum) === gumBefore, 'B asked for no camera or microphone');
  check(await metric('ferry_turn_credentials_total') === issuedBefore + 1, "only A's own request reached the relay");
  await a.getByRole('button', { name: '끊기', exact: true }).click();

  return summary();
});

// Helpers shared by the call tests (call.mjs, call-network.mjs).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Ten seconds of a 440 Hz tone, 48 kHz mono, as the fake microphone.
export function tone(path) {
  const rate = 48_000;
  const n = rate * 10;
  const b = Buffer.alloc(44 + n * 2);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + n * 2, 4);
  b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36);
  b.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  writeFileSync(path, b);
  return path;
}
/// Browser options with fake devices (the tone as microphone).
export function mediaOptions(work) {
  const wav = tone(join(work, 'tone.wav'));
  return {
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`],
    permissions: ['camera', 'microphone'],
  };
}

// Test-side instruments (not the app's): every RTCPeerConnection the page
// makes, and every camera or microphone request.
export async function instrument(context) {
  await context.addInitScript(() => {
    window.__pcs = [];
    window.__gum = 0;
    const P = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends P {
      constructor(...args) {
        super(...args);
        window.__pcs.push(this);
      }
    };
    const md = navigator.mediaDevices;
    const gum = md.getUserMedia.bind(md);
    md.getUserMedia = (...args) => {
      window.__gum += 1;
      return gum(...args);
    };
  });
}

// Descriptions a page is handed (the contact's, after the MLS trip) and
// requests for TURN credentials, per page.
export function record(page) {
  const seen = { remote: [], turn: 0, accept: 0 };
  page.on('request', (r) => {
    const p = new URL(r.url()).pathname;
    if (p.endsWith('/call/turn')) seen.turn += 1;
    if (p.endsWith('/call/accept')) seen.accept += 1;
  });
  page.on('response', async (r) => {
    const p = new URL(r.url()).pathname;
    if (!(p.endsWith('/call/accept') || p === '/call/state') || r.status() !== 200) return;
    try {
      const body = await r.json();
      if (body.sdp) seen.remote.push(body.sdp);
      for (const n of body.notes ?? []) if (n.sdp) seen.remote.push(n.sdp);
    } catch {
      // A body already gone with its page.
    }
  });
  return seen;
}

export async function metric(relay, name) {
  const text = await (await fetch(`${relay}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

/// What the page's newest peer connection reports.
export async function stats(page) {
  return page.evaluate(async () => {
    const pc = window.__pcs.at(-1);
    if (!pc) return null;
    const all = [...(await pc.getStats()).values()];
    const by = (id) => all.find((s) => s.id === id);
    const transport = all.find((s) => s.type === 'transport');
    const pair = transport && by(transport.selectedCandidatePairId);
    // The certificate this side proves itself with in DTLS (Chromium's
    // DTLS 1.3 stats name no remote certificate): the other side's DTLS
    // only connects if it matches the fingerprint it was handed.
    const cert = transport && by(transport.localCertificateId);
    const audio = all.find((s) => s.type === 'inbound-rtp' && s.kind === 'audio');
    const video = all.find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
    return {
      state: pc.connectionState,
      dtls: transport?.dtlsState,
      local: pair && by(pair.localCandidateId),
      remote: pair && by(pair.remoteCandidateId),
      fingerprint: cert?.fingerprint?.toUpperCase(),
      algorithm: cert?.fingerprintAlgorithm,
      relayProtocol: pair && by(pair.localCandidateId)?.relayProtocol,
      audioPackets: audio?.packetsReceived ?? 0,
      framesDecoded: video?.framesDecoded ?? 0,
    };
  });
}

export async function connected(page, timeout = 30_000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    const s = await stats(page);
    if (s?.state === 'connected' && s.dtls === 'connected') return s;
    await page.waitForTimeout(100);
  }
  throw new Error(`no connection: ${JSON.stringify(await stats(page))}`);
}

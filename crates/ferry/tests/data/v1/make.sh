#!/usr/bin/env bash
# Makes the upgrade fixtures in this directory with a given `ferry` binary:
# a relay data directory and two profiles (alice with a duress decoy) that
# talk through it, with one message still waiting on the relay for bob.
#
#   crates/ferry/tests/data/v1/make.sh PATH/TO/ferry
#
# The files here were made by the release at commit e9d7619 (vault schema
# 1, profile state v1 in one record, relay schema 1). The relay listens on
# 127.0.0.1:29473 (below the ephemeral range), which the profiles name.
set -euo pipefail
FERRY=${1:?usage: make.sh PATH/TO/ferry}
OUT=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'kill $RELAY 2>/dev/null || true; rm -rf "$WORK"' EXIT
RELAY_URL=http://127.0.0.1:29473

"$FERRY" relay --listen 127.0.0.1:29473 --data "$WORK/relay" --message-ttl 36500d &
RELAY=$!
for _ in $(seq 50); do curl -s "$RELAY_URL/health" >/dev/null 2>&1 && break; sleep 0.2; done

a() { FERRY_PASSPHRASE='alice fixture passphrase' "$FERRY" --home "$WORK/alice" "$@"; }
b() { FERRY_PASSPHRASE='bob fixture passphrase' "$FERRY" --home "$WORK/bob" "$@"; }

a init --relay "$RELAY_URL"
b init --relay "$RELAY_URL"
a canary off
b canary off
LINK=$(a --json invite --alias Bob | sed -E 's/.*"link":"([^"]+)".*/\1/')
b accept "$LINK" --alias Alice
a sync
b sync
# Messages must outlive the fixture's age.
a timer Bob off
b sync
a send Bob "fixture: before the upgrade"
b sync
b send Alice "fixture: reply before the upgrade"
a sync
FERRY_DURESS_PASSPHRASE='alice fixture duress' a duress set
a send Bob "fixture: waiting on the relay"

kill -INT $RELAY
wait $RELAY || true
rm -rf "$OUT/relay" "$OUT/alice" "$OUT/bob"
cp -a "$WORK/relay" "$WORK/alice" "$WORK/bob" "$OUT/"
echo "fixtures written to $OUT"

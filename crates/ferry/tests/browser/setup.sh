#!/bin/sh
# Installs what the browser tests need when it is missing: Debian's
# chromium (never a browser downloaded by a test tool), CJK fonts so that
# Hangul renders, Node.js, and the pinned npm packages (playwright-core,
# axe-core) from package-lock.json. Safe to run again; quiet when all is
# there.
set -eu
cd "$(dirname "$0")"
need=""
[ -x /usr/bin/chromium ] || need="$need chromium"
[ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || need="$need fonts-noto-cjk"
command -v node >/dev/null 2>&1 || need="$need nodejs"
command -v npm >/dev/null 2>&1 || need="$need npm"
if [ -n "$need" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "browser tests need:$need (install them, or run as root)" >&2
        exit 1
    fi
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/axe-core ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent
fi

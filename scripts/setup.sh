#!/usr/bin/env bash
# Idempotent set-up, run by `npm start` and `npm test` (and so by CI):
#   1. system packages: libtorch (+ OpenBLAS, Gloo headers) unless LIBTORCH or
#      LIBTORCH_USE_PYTORCH points elsewhere; installed with apt-get when we
#      are root on Debian/Ubuntu, otherwise we say what to run;
#   2. npm dependencies (npm ci) when node_modules is missing or stale;
#   3. the native addon (incremental) and the TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[setup] $*"; }

# Debian's default reference BLAS is ~30x slower than OpenBLAS for libtorch's
# matmuls, hence libopenblas0-pthread next to libtorch-dev.
APT_PACKAGES=(libtorch-dev libopenblas0-pthread libgloo-dev)

if [[ -z "${LIBTORCH:-}" && "${LIBTORCH_USE_PYTORCH:-}" != "1" ]]; then
  missing=()
  if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${APT_PACKAGES[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
  elif [[ ! -f /usr/include/torch/csrc/api/include/torch/version.h ]]; then
    echo "[setup] no libtorch found. Set LIBTORCH=/path/to/libtorch (a folder with include/ and lib/)" >&2
    echo "[setup] or LIBTORCH_USE_PYTORCH=1 to use the torch package of \$PYTHON / python3." >&2
    exit 1
  fi
  if ((${#missing[@]})); then
    if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
      log "installing ${missing[*]} (apt-get)"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -q >/dev/null
      apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "[setup] missing system packages: ${missing[*]}" >&2
      echo "[setup] run:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
      echo "[setup] (or set LIBTORCH / LIBTORCH_USE_PYTORCH=1 to use another libtorch; see README)" >&2
      exit 1
    fi
  fi
fi

# Debian's chromium for the serve review page's browser test (test/serve/review_page.test.ts);
# optional: without it that test skips, so only root with apt-get installs it here.
if ! command -v chromium >/dev/null 2>&1 && [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
  log "installing chromium (apt-get) for the review page test"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; } ||
    echo "[setup] could not install chromium; the review page test will skip" >&2
fi

lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f node_modules/.vlm-lock-hash || "$(cat node_modules/.vlm-lock-hash)" != "$lock_hash" ]]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
  echo "$lock_hash" > node_modules/.vlm-lock-hash
fi

# npm may hold back install scripts; building here makes sure the addon exists.
node native/build.mjs
node node_modules/typescript/bin/tsc -p tsconfig.json

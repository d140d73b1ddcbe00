#!/usr/bin/env bash
# Idempotent set-up of the peer environment (run by .ci/run, `npm run test:peers`
# and by hand): a Python virtualenv in the project, .venv-peers/ (git-ignored;
# VLM_PEERS_VENV overrides the folder), holding the real Hugging Face stack the
# peer tests (test/peers/) judge us against: torch, transformers, peft, trl,
# tensorboard, safetensors, Pillow at the versions pinned in
# scripts/peers/requirements.txt, installed by pip from the wheel store pip is
# configured with (offline on the development and CI machines).
#
# The interpreter: $PEERS_PYTHON if set, else the first of python3.11, python3
# (PATH; may be a version manager's shim) and /usr/bin/python3 that can make a
# venv AND has a torch wheel in the store for its version and platform. When
# none can make a venv and we are root on Debian/Ubuntu, python3-venv is
# installed with apt-get (as scripts/setup.sh does for libtorch).
#
# Up to date (nothing done) when the venv's stamp matches the requirements'
# hash and its packages import. Exit status 0 = ready; 1 = could not be made
# (the reason is printed last, on stderr).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[setup-peers] $*"; }
fail() { echo "[setup-peers] $*" >&2; exit 1; }

VENV="${VLM_PEERS_VENV:-.venv-peers}"
REQS=scripts/peers/requirements.txt
TORCH_PIN="$(grep -E '^torch==' "$REQS" | head -1)"
IMPORTS="import torch, transformers, peft, trl, tensorboard, safetensors, PIL, numpy"
# Cheap presence check for the up-to-date test (importing them all takes ~10 s).
FIND_SPECS="import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in 'torch transformers peft trl tensorboard safetensors PIL numpy'.split()))"
# pip's default index (pypi.org) is unreachable offline and every lookup would
# retry it 5 times with back-off (~8 s per package); fail over to the local
# indexes at once unless the caller chose otherwise.
export PIP_RETRIES="${PIP_RETRIES:-0}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

want="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [[ -f "$VENV/.vlm-peers-stamp" && "$(cat "$VENV/.vlm-peers-stamp")" == "$want" ]] &&
  "$VENV/bin/python" -c "$FIND_SPECS" >/dev/null 2>&1; then
  log "up to date: $VENV"
  exit 0
fi

t0=$(date +%s)
tmp="$VENV.tmp.$$"
trap 'rm -rf "$tmp"' EXIT

# Tries to make a venv in $tmp with interpreter $1 that can install the pinned
# torch; prints why not on failure.
try_python() {
  local py="$1"
  command -v "$py" >/dev/null 2>&1 || { echo "not found"; return 1; }
  "$py" -c "import venv, ensurepip" >/dev/null 2>&1 || { echo "no venv/ensurepip module"; return 1; }
  rm -rf "$tmp"
  "$py" -m venv "$tmp" >/dev/null 2>&1 || { echo "python -m venv failed"; return 1; }
  if ! "$tmp/bin/python" -m pip install --dry-run --no-deps -q "$TORCH_PIN" >/dev/null 2>&1; then
    echo "no wheel for $TORCH_PIN for Python $("$py" -c 'import sys; print(sys.version.split()[0])') in pip's store"
    return 1
  fi
}

candidates=()
if [[ -n "${PEERS_PYTHON:-}" ]]; then candidates=("$PEERS_PYTHON"); else candidates=(python3.11 python3 /usr/bin/python3); fi
pick() {
  local c why
  for c in "${candidates[@]}"; do
    if why="$(try_python "$c")"; then PY="$c"; return 0; fi
    reasons+=("$c: $why")
  done
  return 1
}
reasons=()
PY=""
if ! pick; then
  if [[ -z "${PEERS_PYTHON:-}" && "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1 &&
    ! /usr/bin/python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
    log "installing python3-venv (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends python3-venv >/dev/null
    reasons=()
    candidates=(/usr/bin/python3)
    pick || true
  fi
fi
if [[ -z "$PY" ]]; then
  printf '[setup-peers]   %s\n' "${reasons[@]}" >&2
  fail "no Python interpreter can make the peer venv (set PEERS_PYTHON=/path/to/python3.11, or install python3-venv)"
fi
pyver="$("$tmp/bin/python" -c 'import sys; print(sys.version.split()[0])')"
rm -rf "$tmp"
# Made in place under its final name (venv scripts hold absolute paths); the
# stamp is written last, so an interrupted install is redone from scratch.
log "creating $VENV with $PY (Python $pyver), installing $REQS"
rm -rf "$VENV"
"$PY" -m venv "$VENV" >/dev/null
"$VENV/bin/python" -m pip install -q --no-input -r "$REQS" 2>&1 |
  grep -v -E "^WARNING: (Location|Retrying)|Could not fetch URL|connection broken|skipping$" || true
"$VENV/bin/python" -c "$IMPORTS" || fail "the venv $VENV was installed but does not import its packages (error above)"
echo "$want" > "$VENV/.vlm-peers-stamp"
log "ready: $VENV, $(du -sh "$VENV" | cut -f1), $(( $(date +%s) - t0 )) s"

#!/usr/bin/env bash
# The Python virtualenv of the interop client test/interop/python/charger.py (the `ocpp`
# library from PyPI), used by test/e2e/python-interop.test.ts and installed by .ci/run.
#
#   bash scripts/python-env.sh          # prints the venv's python path, the only stdout line
#
# Where: ${CHARGESTREAM_PYTHON_ENV:-$HOME/.cache/chargestream/python-env}. Which interpreter
# builds it: ${CHARGESTREAM_PYTHON:-python3}, 3.11 or newer (the `ocpp` package needs it).
# Idempotent: a marker file in the venv holds the sha256 of the pinned requirements file and
# of the interpreter's version; when it matches and the packages import, nothing is installed.
# Otherwise the venv is (re)created from scratch and the requirements pip-installed; the marker
# is written last, so an interrupted install is redone on the next run. Runs hold a lock, so
# concurrent callers wait for one install. Messages go to stderr; exits non-zero on failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQUIREMENTS="$ROOT/test/interop/python/requirements.txt"
ENV_DIR="${CHARGESTREAM_PYTHON_ENV:-$HOME/.cache/chargestream/python-env}"
BASE_PYTHON="${CHARGESTREAM_PYTHON:-python3}"
MARKER_NAME=".chargestream-requirements.sha256"

log() { echo "python-env: $*" >&2; }
die() {
  echo "python-env: error: $*" >&2
  exit 1
}

[[ -f "$REQUIREMENTS" ]] || die "requirements file not found: $REQUIREMENTS"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
command -v "$BASE_PYTHON" >/dev/null ||
  die "'$BASE_PYTHON' not found: install Python 3.11 or newer, or set CHARGESTREAM_PYTHON"
"$BASE_PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
  die "$("$BASE_PYTHON" --version 2>&1) is too old: the ocpp package needs Python 3.11 or newer (set CHARGESTREAM_PYTHON)"
"$BASE_PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
  die "'$BASE_PYTHON' lacks the venv/ensurepip modules (on Debian: apt-get install python3-venv)"

mkdir -p "$(dirname "$ENV_DIR")" || die "cannot create $(dirname "$ENV_DIR")"
ENV_DIR="$(cd "$(dirname "$ENV_DIR")" && pwd)/$(basename "$ENV_DIR")"
PYTHON="$ENV_DIR/bin/python"
MARKER="$ENV_DIR/$MARKER_NAME"

# One install at a time (flock is util-linux; without it, runs are not serialized).
if command -v flock >/dev/null; then
  exec 9>"$ENV_DIR.lock" || die "cannot open the lock file $ENV_DIR.lock"
  flock -w 600 9 || die "timed out after 600 s waiting for $ENV_DIR.lock"
fi

WANT="$(
  {
    sha256sum <"$REQUIREMENTS"
    "$BASE_PYTHON" -c 'import sys; print(sys.version)'
  } | sha256sum | cut -d' ' -f1
)"

healthy() {
  [[ -x "$PYTHON" && -f "$MARKER" && "$(cat "$MARKER")" == "$WANT" ]] &&
    "$PYTHON" -c 'import ocpp.v16, ocpp.v201, websockets.asyncio.client' 2>/dev/null
}

if ! healthy; then
  started=$SECONDS
  log "creating $ENV_DIR with $("$BASE_PYTHON" --version 2>&1) and installing $REQUIREMENTS"
  rm -f "$MARKER"
  "$BASE_PYTHON" -m venv --clear "$ENV_DIR" >&2 || die "python -m venv $ENV_DIR failed"
  # pip writes progress to stdout: keep stdout for the one path line.
  "$PYTHON" -m pip install --disable-pip-version-check --no-input --quiet \
    --require-virtualenv -r "$REQUIREMENTS" >&2 ||
    die "pip install -r $REQUIREMENTS failed (is PyPI reachable? see pip's message above)"
  "$PYTHON" -c 'import ocpp.v16, ocpp.v201, websockets.asyncio.client' >&2 ||
    die "the installed packages do not import"
  echo "$WANT" >"$MARKER"
  log "installed in $((SECONDS - started)) s"
fi

echo "$PYTHON"

#!/usr/bin/env bash
# Runs brevis's whole test suite on a fresh machine: installs what the tests need
# (Debian packages when a tool is missing, PostgreSQL's server among them; npm packages
# into tests/oidc/node_modules and tests/interop/node_modules; pinned Python packages into
# .venv-test: sigstore-python, moto's KMS server), checks formatting and lints, then runs every test (unit, integration,
# interop; tests/postgres.rs starts and stops its own PostgreSQL cluster).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v cc >/dev/null || need_apt+=(gcc)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# PostgreSQL's server binaries: tests/postgres.rs starts its own cluster in a temp dir.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
# tests/keys.rs: a PKCS#11 token (SoftHSM2) and pkcs11-tool to inspect it.
command -v softhsm2-util >/dev/null || need_apt+=(softhsm2)
command -v pkcs11-tool >/dev/null || need_apt+=(opensc)
# tests/explorer.rs: the log explorer in headless Chromium (driven by playwright-core).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

log "test OIDC provider, sigstore-js, playwright-core (npm ci in tests/oidc, tests/interop, tests/ui)"
(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)

log "Python test environment (.venv-test, pinned in tests/py/requirements.txt)"
stamp=.venv-test/.requirements.sha256
want=$(sha256sum tests/py/requirements.txt | cut -d' ' -f1)
if [ ! -x .venv-test/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf .venv-test
  python3 -m venv .venv-test
  .venv-test/bin/pip install --quiet --disable-pip-version-check -r tests/py/requirements.txt
  echo "$want" > "$stamp"
fi

log "cargo fmt --check"
cargo fmt --all -- --check

# Every test runs with the features tests need (fuzz entry points for the corpus replay,
# AWS KMS keys against moto);
# clippy checks the same build, so nothing is compiled twice.
FEATURES=fuzzing,fault-injection,test-support,kms

log "cargo clippy (all targets, warnings are errors)"
cargo clippy --release --all-targets --features "$FEATURES" --locked -- -D warnings

log "the sigstore crate as a client (tests/sigstore-rs, its own lock file)"
(cd tests/sigstore-rs && cargo fmt -- --check &&
  CARGO_TARGET_DIR="$PWD/../../target" cargo build --release --locked)

log "cargo test (release)"
cargo test --release --features "$FEATURES" --locked -- "$@"

# A short fuzzing pass over every target (docs/security.md has the long runs); skipped
# with BREVIS_SKIP_FUZZ=1 or when a test filter was given.
if [ "${BREVIS_SKIP_FUZZ:-0}" != 1 ] && [ $# -eq 0 ]; then
  log "fuzz smoke pass (every target, 12 s each)"
  scripts/fuzz.sh 12
fi

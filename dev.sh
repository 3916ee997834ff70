#!/usr/bin/env bash
# The project's two commands. Each one does all set-up on a fresh machine
# (Python >= 3.10, Node 20 + npm): virtualenv, package with extras, pinned Azurite.
#
#   ./dev.sh demo    run the demo: embedded Azurite + worker + sample orchestrations
#   ./dev.sh test    run the quality gates: ruff, mypy --strict, pytest (unit, integration, e2e,
#                    deploy: hadolint, kubernetes-validate + KEDA schema, checkov)
#   ./dev.sh tools   install only the deployment validators (`test` does it too)
#
# Extra arguments after `test` go to pytest, after `demo` to `durable-azstorage demo`.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV="${DURABLE_AZSTORAGE_VENV:-.venv}"

setup() {
  "$PYTHON" - <<'PY' || { echo "Python >= 3.10 is required (set PYTHON=...)" >&2; exit 2; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
  local started=$SECONDS
  if [ ! -x "$VENV/bin/python" ]; then
    say "first run: creating the virtualenv $VENV; set-up takes a few minutes (5 min measured on a busy 2-core machine), later runs start at once"
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    say "installing durable_azstorage into $VENV with its extras [dev,functions]: the Azure Storage SDKs," \
        "durabletask, azure-functions(-durable), aiohttp, grpcio, click, rich; ruff, mypy, pytest, playwright (pip)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev,functions,browser]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
  # Installs the Azurite pinned by durable_azstorage/_azurite/package-lock.json (npm ci, once).
  if ! "$VENV/bin/durable-azstorage" -q azurite --install-only --check >/dev/null 2>&1; then
    say "installing the storage emulator Azurite (npm ci of the pinned lockfile into ~/.cache/durable-azstorage, ~30 s)"
  fi
  "$VENV/bin/durable-azstorage" -q azurite --install-only >/dev/null
  if [ $((SECONDS - started)) -gt 5 ]; then
    say "set-up done in $((SECONDS - started)) s"
  fi
}

# The dashboard's browser tests drive Debian's Chromium through Playwright (no browser download).
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  echo "installing Debian's chromium for the dashboard's browser tests" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
}

# The deployment validators (infra/validators.txt) in a virtualenv of their own: checkov pins older
# versions of packages that the project's venv uses. One per version of that file, kept in the user's
# cache like Azurite, so fresh clones (CI) reuse it; tests/deploy/conftest.py finds it the same way.
deploy_tools() {
  local hash
  hash="$(sha256sum infra/validators.txt | cut -c1-16)"
  local home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"   # as Python's Path.home()
  local tools="${DURABLE_AZSTORAGE_TOOLS_VENV:-${XDG_CACHE_HOME:-$home/.cache}/durable-azstorage/validators-$hash}"
  if [ ! -f "$tools/.installed" ]; then
    echo "installing the deployment validators (infra/validators.txt) into $tools" >&2
    rm -rf "$tools"
    "$PYTHON" -m venv "$tools"
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check -r infra/validators.txt
    touch "$tools/.installed"
  fi
}

say() { echo "dev.sh: $*" >&2; }

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  demo)
    setup
    exec "$VENV/bin/durable-azstorage" demo "$@"
    ;;
  tools)
    deploy_tools
    ;;
  test)
    setup
    ensure_chromium
    deploy_tools
    "$VENV/bin/ruff" check .
    "$VENV/bin/mypy" --strict durable_azstorage
    if [ $# -gt 0 ]; then
      exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
    fi
    # Everything on the default (lean) data path, then the storage-facing integration tests
    # again with every call on the Azure SDK (DURABLE_AZSTORAGE_DATA_PATH=sdk).
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider
    echo "== the same storage integration tests on the Azure SDK data path =="
    DURABLE_AZSTORAGE_DATA_PATH=sdk exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
      tests/integration/test_azurite_rig.py tests/integration/test_task_hub_queues.py \
      tests/integration/test_history_store.py tests/integration/test_instance_store.py \
      tests/integration/test_metrics_counting.py tests/integration/test_worker.py \
      tests/integration/test_client_ops.py
    ;;
  *)
    echo "usage: ./dev.sh demo | ./dev.sh test [pytest args] | ./dev.sh tools" >&2
    exit 2
    ;;
esac

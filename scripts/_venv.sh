# shellcheck shell=bash
# Sourced by scripts/demo and scripts/test: make .venv if missing and install the project into it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KIOSK_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV" >&2
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$1"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    echo "installing the kiosk into $VENV ($1)" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "${ROOT}[$1]"
    touch "$STAMP"
fi

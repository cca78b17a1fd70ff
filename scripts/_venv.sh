# shellcheck shell=bash
# Sourced by scripts/demo, test, bench and upstream: make the venv if missing and install the kiosk into it
# (with the extras in $1) at the pinned versions. The caller or the environment may set KIOSK_VENV,
# KIOSK_CONSTRAINTS, PYTHON, and KIOSK_SYSTEM_SITE=1 for a venv that also sees apt's packages;
# KIOSK_VENV_DRY_RUN=1 settles the names only and makes nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KIOSK_VENV:-$ROOT/.venv}"
CONSTRAINTS="${KIOSK_CONSTRAINTS:-$ROOT/constraints.txt}"
PY="${PYTHON:-python3}"
SYSTEM_SITE=()
[ "${KIOSK_SYSTEM_SITE:-0}" = 1 ] && SYSTEM_SITE=(--system-site-packages)
# the tests compare what is installed with the file it was installed from
export KIOSK_CONSTRAINTS="$CONSTRAINTS"
if [ "${KIOSK_VENV_DRY_RUN:-0}" != 1 ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        echo "creating $VENV" >&2
        "$PY" -m venv "${SYSTEM_SITE[@]}" "$VENV"
    fi
    STAMP="$VENV/.installed-$1"  # holds the constraints file it was installed with
    if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$CONSTRAINTS" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ] \
        || [ "$CONSTRAINTS" -nt "$STAMP" ]; then
        echo "installing the kiosk into $VENV ($1, pinned by ${CONSTRAINTS#"$ROOT"/})" >&2
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --constraint "$CONSTRAINTS" \
            -e "${ROOT}[$1]"
        echo "$CONSTRAINTS" >"$STAMP"
    fi
fi

#!/usr/bin/env sh
# Create (or reuse) the project virtualenv and install the project with the given extras.
#   scripts/venv.sh VENV_DIR STAMP_FILE [EXTRAS]
# Works on a fresh Debian / Raspberry Pi OS machine that has Python >= 3.11 and make: when the
# interpreter lacks the venv module (Debian ships it as python3-venv) and we run as root, it is
# installed with apt-get; otherwise the message says what to install.
set -eu
venv=$1
stamp=$2
extras=${3:-}
python=${PYTHON:-python3}

if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: $python not found; install Python 3.11 or newer (Debian: apt-get install python3)" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: $python is $("$python" -c 'import sys; print(sys.version.split()[0])'); beacon-gateway needs Python >= 3.11 (set PYTHON=python3.11 or newer)" >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        pkg="python3-venv"
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "The Python venv module is missing: installing $pkg with apt-get" >&2
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
            "$python" -m venv "$venv"
        else
            echo "error: '$python -m venv' failed; install the venv module (Debian/Raspberry Pi OS: sudo apt-get install $pkg) and run make again" >&2
            exit 1
        fi
    fi
fi

if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    target="."
    if [ -n "$extras" ]; then target=".[$extras]"; fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --editable "$target"
    touch "$stamp"
fi

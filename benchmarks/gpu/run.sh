#!/usr/bin/env bash
# The GPU benchmarks, as one call on the lent device machine (see benchmarks/RESULTS.md).
#
#   here:    python benchmarks/gpu/fetch_wheels.py          # once: .whl/ with trl, bitsandbytes, datasets, ...
#   device:  run(command="bash benchmarks/gpu/run.sh gpt2", carry=[".whl"])
#            run(command="bash benchmarks/gpu/run.sh sft --only trl-defaults ours", carry=[".whl"])
#            run(command="bash benchmarks/gpu/run.sh seqlen", carry=[".whl"])   # lesson 09 at GPU sizes
#
# The first argument picks the benchmark (gpt2 | sft | seqlen | check); the rest go to its script.
# Logs land in $OUT (the device tool brings them back), or in /tmp/coursekit-bench elsewhere.
set -uo pipefail
cd "$(dirname "$0")/../.."
what=${1:-check}
shift || true
OUT=${OUT:-/tmp/coursekit-bench}
mkdir -p "$OUT"

if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "Installing the carried wheels failed (see above)."; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
else
    echo "No .whl/ here: using the machine's own packages (run benchmarks/gpu/fetch_wheels.py and carry .whl for ours)."
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

python3 - <<'PY' 2>&1 | tee "$OUT/machine.txt"
import importlib, platform, torch
print(f"python {platform.python_version()} · torch {torch.__version__} (CUDA {torch.version.cuda})")
print("GPU:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")
for name in ("transformers", "trl", "peft", "datasets", "bitsandbytes", "accelerate", "triton"):
    try:
        print(f"{name} {importlib.import_module(name).__version__}")
    except Exception as err:  # report every missing piece at once, not the first
        print(f"{name}: NOT IMPORTABLE ({type(err).__name__}: {err})")
PY

case "$what" in
    check) ;;
    gpt2) python3 benchmarks/gpt2_throughput.py "$@" 2>&1 | tee "$OUT/gpt2_throughput.log" ;;
    sft) python3 benchmarks/sft_throughput.py "$@" 2>&1 | tee "$OUT/sft_throughput.log" ;;
    seqlen) python3 benchmarks/seq_len_cost.py "$@" 2>&1 | tee "$OUT/seq_len_cost.log" ;;
    *) echo "Unknown benchmark '$what'. Use one of: check, gpt2, sft, seqlen."; exit 2 ;;
esac

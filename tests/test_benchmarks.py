"""The GPU benchmarks must not rot between the sessions that have a GPU: run their CPU smoke mode."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpt2_throughput_smoke_runs_both_models():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpt2_throughput.py"), "--smoke"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "hf eager" in out and "ours eager" in out and "ours/hf eager" in out

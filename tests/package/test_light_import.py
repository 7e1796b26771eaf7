"""`import jupyter_tune` and the job store stay light: torch loads only when a model is touched."""

import subprocess
import sys


def test_import_and_job_listing_do_not_load_torch(tmp_path):
    code = ("import os, sys, jupyter_tune as jt; os.environ['JUPYTER_TUNE_HOME'] = sys.argv[1]; jt.list_jobs(); "
            "jt.TuningParams(); print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""make demo: execute notebooks/quickstart.ipynb headless against a real kernel, save the executed copy,
print base and tuned macro F1."""

import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
src = ROOT / "notebooks" / "quickstart.ipynb"
out = ROOT / "notebooks" / "quickstart.executed.ipynb"

nb = nbformat.read(src, as_version=4)
client = NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(src.parent)}})
t0 = time.time()
try:
    client.execute()
finally:
    nbformat.write(nb, out)
    print(f"executed notebook saved to {out} ({time.time() - t0:.0f} s)")
errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
if errors:
    print("\n".join(errors[0]["traceback"]), file=sys.stderr)
    sys.exit(1)
last = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
summary = json.loads(last.strip().splitlines()[-1])
print(f"base macro F1:  {summary['base_macro_f1']:.3f}\ntuned macro F1: {summary['tuned_macro_f1']:.3f}"
      f"\njob {summary['job_id']}: {summary['state']}")

"""``%load_ext jupyter_remote`` must not import boto3, ipywidgets or the SageMaker SDK."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "jupyter_remote")
heavy = ["boto3", "botocore", "ipywidgets", "sagemaker", "pandas", "numpy"]
print(json.dumps({
    "loaded": [m for m in heavy if m in sys.modules],
    "magics": sorted(shell.magics_manager.magics["cell"]),
}))
"""


def test_load_ext_imports_nothing_heavy_and_registers_the_magics():
    proc = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert {"remote_process", "s3batch"} <= set(result["magics"])

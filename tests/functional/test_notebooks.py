"""Real kernels: the demo notebook end to end, and re-attaching after a kernel restart."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def test_demo_notebook_runs_top_to_bottom(tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / "01-remote-process.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    # The job panel's text/plain form carries what the text display would have printed.
    text = "\n".join(
        out.get("text", "") + out.get("data", {}).get("text/plain", "") for out in outputs
    )
    assert any("application/vnd.jupyter.widget-view+json" in out.get("data", {}) for out in outputs)
    assert "Running on the local engine" in text
    assert "summarized 1,000,000 rows into 7 groups; read 3 raw rows" in text
    assert "written back:" in text and "agg" in text
    assert "out/agg.csv" in text
    assert "caught remotely raised ZeroDivisionError" in text
    assert 'File "<cell>", line 1' in text


def test_s3batch_demo_notebook_runs_top_to_bottom():
    nb = nbformat.read(ROOT / "notebooks" / "02-s3batch.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    text = "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )
    assert "12 thumbnails written" in text
    assert text.count("Succeeded") >= 12
    # The broken object failed its task; the re-run of the failed tasks succeeded.
    assert re.search(r"incoming/broken\.png +PermanentFailure", text)
    assert re.search(r"incoming/broken\.png +Succeeded", text)


class Kernel:
    """A real ipykernel driven through jupyter_client."""

    def __init__(self) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name="python3")

    def run(self, code: str, timeout: float = 120) -> str:
        """Execute ``code``; return its stdout; raise if it raised."""
        msg_id = self.client.execute(code)
        chunks, error = [], None
        while True:
            msg = self.client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                chunks.append(content["text"])
            elif kind in ("execute_result", "display_data", "update_display_data"):
                chunks.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        if error:
            raise AssertionError(f"{error}\n{''.join(chunks)}")
        return "".join(chunks)

    def restart(self) -> None:
        """Kill and restart the kernel, as the Restart button does."""
        self.manager.restart_kernel(now=True)
        self.client.wait_for_ready(timeout=60)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel():
    k = Kernel()
    yield k
    k.close()


@pytest.mark.timeout(240)
def test_kernel_restart_during_a_job_then_attach(kernel):
    kernel.run("%load_ext jupyter_remote\nbase = 40")
    kernel.run(
        "%%remote_process --no-wait\nimport time\ntime.sleep(20)\nanswer = base + 2\n"
        "print('remote done')\n"
    )
    job_id = kernel.run("print(_.job_id)").strip()
    assert re.fullmatch(r"jupyter-remote-[0-9a-f-]+", job_id), job_id
    kernel.restart()
    assert kernel.run("print('base' in dir())").strip() == "False"  # the namespace is new
    listing = kernel.run("%load_ext jupyter_remote\n%remote_jobs --active")
    assert job_id in listing and "InProgress" in listing
    out = kernel.run(f"import jupyter_remote\njupyter_remote.attach({job_id!r}, timeout=120)")
    assert "remote done" in out
    assert kernel.run("print(answer)").strip() == "42"
    assert "yes" in kernel.run("%remote_jobs").split(job_id)[1].splitlines()[0]

"""Widget panels in a real kernel (nbclient): --no-wait frees the kernel; attach writes back."""

from __future__ import annotations

import datetime as dt

import nbformat
import pytest
from nbclient import NotebookClient

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

CELLS = [
    "%load_ext jupyter_remote\nimport sys\nprint('widgets:', 'ipywidgets' in sys.modules)",
    "base = 40",
    "%%remote_process --no-wait\nimport time\nfor i in range(8):\n"
    "    print(f'step {i} <b>not bold</b>', flush=True)\n    time.sleep(0.5)\nanswer = base + 2\n",
    "job = _\nprint(job.job_id)\nprint('right after --no-wait:', job.status().state)",
    "print('still responsive:', sum(range(10)), job.status().state)",
    "%remote_jobs --active",
    "import jupyter_remote\njupyter_remote.attach(job.job_id)",
    "print('answer is', answer)",
    "%%remote_process --no-wait\nimport time\ntime.sleep(1)\nanswer2 = base * 2\n",
    "job2 = _\nfrom jupyter_remote.display.jobs_panel import JobsPanel\n"
    "jobs = JobsPanel(user_ns=get_ipython().user_ns)\njobs.row(job2.job_id).attach.click()\njobs",
    "import time\nwhile job2.status().state == 'InProgress':\n    time.sleep(0.1)\n"
    "time.sleep(1.5)\nprint('during the cell:', 'answer2' in globals())",
    "print('answer2 is', answer2)",
    "%%remote_process --no-widgets\nz = 1\n",
]


def _seconds(cell) -> float:
    timing = cell.metadata["execution"]
    start = dt.datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def _text(cell) -> str:
    return "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs
    )


@pytest.mark.timeout(180)
def test_no_wait_panel_keeps_the_kernel_free_then_attach_writes_back():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True).execute()
    load, _, no_wait, after, responsive, listing, attach, answer = nb.cells[:8]

    assert "widgets: False" in _text(load)  # %load_ext imports no widgets
    # --no-wait returned with the job still running, and shows a live panel.
    assert any(WIDGET_VIEW in o.get("data", {}) for o in no_wait.outputs)
    assert "right after --no-wait: InProgress" in _text(after)
    assert "still responsive: 45 InProgress" in _text(responsive)
    assert _seconds(responsive) < 2
    job_id = _text(after).splitlines()[0]
    assert job_id.startswith("jupyter-remote-")
    # %remote_jobs is a widget panel whose text form is the table.
    assert job_id in _text(listing) and "InProgress" in _text(listing)
    assert any(WIDGET_VIEW in o.get("data", {}) for o in listing.outputs)
    # Attaching re-creates a panel that follows the job to its end and writes back.
    assert "step 7 <b>not bold</b>" in _text(attach)
    assert "written back: answer" in _text(attach)
    assert "answer is 42" in _text(answer)

    # The saved widget state shows the final status and the log lines, escaped.
    models = nb.metadata["widgets"][WIDGET_STATE]["state"]
    values = [m["state"].get("value") for m in models.values()]
    values = [v for v in values if isinstance(v, str)]
    statuses = [v for v in values if "jr-status-line" in v]
    assert any('data-state="Completed"' in v and "written back" in v for v in statuses), statuses
    logs = [v for v in values if 'class="jr-log"' in v]
    assert any("step 7 &lt;b&gt;not bold&lt;/b&gt;" in v for v in logs)
    assert not any("<b>not bold" in v for v in logs)

    # Attach in %remote_jobs writes back between cells, never inside a running one.
    assert "during the cell: False" in _text(nb.cells[10])
    assert "answer2 is 80" in _text(nb.cells[11])
    # --no-widgets: the text display, as in a terminal.
    plain = nb.cells[12]
    assert not any(WIDGET_VIEW in o.get("data", {}) for o in plain.outputs)
    assert "written back: z" in _text(plain)

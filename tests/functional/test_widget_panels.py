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


RERUN_CELLS = [
    "%load_ext jupyter_remote\nimport contextlib, jupyter_remote\n"
    "from jupyter_remote.s3batch_manifest import encode_key\n"
    "client = jupyter_remote.s3_client()\n"
    "for name in ('photos', 'batch'):\n"
    "    with contextlib.suppress(\n"
    "        client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists\n"
    "    ):\n"
    "        client.create_bucket(Bucket=name)\n"
    "keys = ['nb-rr/ok.txt', 'nb-rr/gone 1.txt', 'nb-rr/gone+2.txt']\n"
    "client.put_object(Bucket='photos', Key=keys[0], Body=b'x')\n"
    "rows = ''.join(f'photos,{encode_key(k)}\\n' for k in keys)\n"
    "client.put_object(Bucket='batch', Key='nb-rr.csv', Body=rows.encode())",
    "%%s3batch --manifest s3://batch/nb-rr.csv --no-wait\nimport boto3\ns3 = boto3.client('s3')\n"
    "def process(bucket, key):\n"
    "    return len(s3.get_object(Bucket=bucket, Key=key)['Body'].read())\n",
    # The panel %%s3batch showed: clicked here as the frontend would, in a cell of its own.
    "import time\njob = _\nfrom jupyter_remote.display.panel import _FOLLOWING\n"
    "panel = _FOLLOWING[job.job_id]\nassert panel.settled.wait(60)\n"
    "print('failed:', panel.state.progress['failed'], 'enabled:', not panel._w.rerun.disabled)\n"
    "for key in keys[1:]:\n    client.put_object(Bucket='photos', Key=key, Body=b'yy')\n"
    "panel._w.rerun.click()\npanel._w.rerun.click()\n"
    "print('disabled after the click:', panel._w.rerun.disabled)\n"
    "deadline = time.monotonic() + 60\n"
    "while panel.rerun_panel is None and time.monotonic() < deadline:\n    time.sleep(0.1)\n"
    "assert panel.rerun_panel.settled.wait(60)\nnew = panel.rerun_panel.job\n"
    "print('new job:', new.job_id)\n"
    "print('ran:', panel.rerun_panel.state.state, sorted(new.table().key))",
]


@pytest.mark.timeout(180)
def test_rerun_failed_button_in_a_real_kernel_shows_the_new_job_inside_the_panel():
    from jupyter_remote.jobstore import JobStore

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in RERUN_CELLS])
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True).execute()
    text = _text(nb.cells[2])
    assert "failed: 2 enabled: True" in text
    assert "disabled after the click: True" in text
    assert "ran: Complete ['nb-rr/gone 1.txt', 'nb-rr/gone+2.txt']" in text
    new_id = text.split("new job: ", 1)[1].split()[0]
    old_id = JobStore().get(new_id).request["Description"].rsplit(" ", 1)[1]
    reruns = [r for r in JobStore().list() if old_id in r.request.get("Description", "")]
    assert [r.job_id for r in reruns] == [new_id]  # two clicks, one job

    # The saved widget state: the new job's panel sits in the clicked panel's re-run area (the
    # new panel has an empty one of its own).
    models = nb.metadata["widgets"][WIDGET_STATE]["state"]
    areas = [m for m in models.values() if "jr-reruns" in m["state"].get("_dom_classes", [])]
    assert len(areas) == 2
    (child,) = [c for area in areas for c in area["state"]["children"]]
    child_box = models[child.removeprefix("IPY_MODEL_")]["state"]
    assert "jupyter-remote-panel" in child_box["_dom_classes"]
    values = [v for m in models.values() if isinstance(v := m["state"].get("value"), str)]
    assert any(v.startswith(f'<b class="jr-job-id">{new_id}</b> · local') for v in values)
    assert any(f"as {new_id} (panel below)" in v for v in values)

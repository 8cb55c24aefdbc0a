"""How a job's status reads in a panel: badge colours, progress steps, rates, links (pure)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from ..engines.base import JobHandle

PROCESSING_STEPS = ("uploading", "starting", "running", "uploading outputs", "writing back")

# Both engines' vocabularies: SageMaker Processing and S3 Batch Operations.
_COLOURS = {
    "Completed": "#2e7d32",
    "Complete": "#2e7d32",
    "Failed": "#c62828",
    "Stopped": "#616161",
    "Cancelled": "#616161",
    "Stopping": "#ef6c00",
    "Cancelling": "#ef6c00",
    "Failing": "#ef6c00",
    "Suspended": "#8e24aa",
}
_ACTIVE_COLOUR = "#1565c0"
_WAITING_COLOUR = "#78909c"
_WAITING_STATES = frozenset({"Uploading", "Submitting", "New", "Preparing", "Ready"})


def badge_html(state: str) -> str:
    """A coloured badge for ``state``; ``data-state`` lets tests and styles find it."""
    colour = _COLOURS.get(state) or (_WAITING_COLOUR if state in _WAITING_STATES else None)
    colour = colour or _ACTIVE_COLOUR
    safe = html.escape(state)
    return (
        f'<span class="jr-badge" data-state="{safe}" style="background:{colour};color:#fff;'
        f'border-radius:3px;padding:1px 7px;font-weight:600">{safe}</span>'
    )


def duration(seconds: float) -> str:
    """``4.2 s``, ``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    if seconds < 10:
        return f"{max(0.0, seconds):.1f} s"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class Progress:
    """What the progress bar shows."""

    fraction: float
    label: str
    style: str = ""  # ipywidgets bar_style: "", "success", "danger", "warning", "info"


def _ending_style(state: str, succeeded: bool) -> str:
    if succeeded:
        return "success"
    return "danger" if state == "Failed" else "warning"


def processing_step(*, phase: str, terminal: bool, has_logs: bool, submitted: bool) -> int:
    """Index in :data:`PROCESSING_STEPS` of where a processing job is.

    The local engine reports a ``Phase``; an engine that reports none is "starting" until its
    first log line shows the container runs.
    """
    if not submitted:
        return 0
    if terminal:
        return 4
    phase = phase.lower()
    if phase in ("uploading outputs", "stopping", "done"):
        return 3
    if phase == "running" or (not phase and has_logs):
        return 2
    return 1


def processing_progress(
    *,
    state: str,
    phase: str,
    terminal: bool,
    succeeded: bool,
    has_logs: bool,
    submitted: bool,
    settled: bool,
    written_back: bool = False,
) -> Progress:
    """The five-step bar of a processing job; full once nothing more happens (``settled``)."""
    step = processing_step(phase=phase, terminal=terminal, has_logs=has_logs, submitted=submitted)
    if terminal and (settled or not succeeded):
        label = "written back" if succeeded and written_back else ""
        return Progress(1.0, label, _ending_style(state, succeeded))
    name = PROCESSING_STEPS[step]
    if phase and phase.lower() == "stopping":
        name = "stopping"
    return Progress((step + 0.5) / len(PROCESSING_STEPS), f"{step + 1}/5 {name}", "info")


def s3batch_progress(
    progress: dict[str, Any], *, state: str, terminal: bool, succeeded: bool
) -> Progress:
    """Tasks done of total, with the rate and an ETA from the engine's active time."""
    total = int(progress.get("total") or 0)
    ok = int(progress.get("succeeded") or 0)
    bad = int(progress.get("failed") or 0)
    done = ok + bad
    fraction = done / total if total else (1.0 if terminal else 0.0)
    label = f"{done:,}/{total:,} tasks · {ok:,} succeeded · {bad:,} failed"
    elapsed = float(progress.get("elapsed") or 0)
    if done and elapsed > 0 and not terminal:
        rate = done / elapsed
        label += f" · {rate:,.1f}/s"
        if total > done:
            label += f" · ETA {duration((total - done) / rate)}"
    if terminal:
        return Progress(1.0 if not total else fraction, label, _ending_style(state, succeeded))
    return Progress(fraction, label, "danger" if bad else "info")


def resource_text(request: dict[str, Any]) -> str:
    """``2 x ml.m5.xlarge`` for a processing request, ``function NAME`` for an S3 Batch one."""
    cluster = (request.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    if cluster:
        return f"{cluster.get('InstanceCount', 1)} x {cluster.get('InstanceType', '?')}"
    invoke = (request.get("Operation") or {}).get("LambdaInvoke") or {}
    arn = invoke.get("FunctionArn", "")
    if arn:
        name = arn.split(":function:", 1)[-1].split(":", 1)[0]
        return f"function {name}"
    return ""


def console_links(handle: JobHandle) -> dict[str, str]:
    """AWS console pages of the job (``{"job": url, ...}``); none for the local engine.

    An engine may record its own under ``links`` in the handle (the SageMaker engine does: the
    job and its logs); otherwise the job page is derived from the ARN.
    """
    links = handle.data.get("links")
    if isinstance(links, dict) and links:
        return {str(k): str(v) for k, v in links.items()}
    if handle.data.get("console_url"):
        return {"job": str(handle.data["console_url"])}
    if handle.engine == "local":
        return {}
    parts = str(handle.data.get("arn", "")).split(":", 5)
    if len(parts) < 6 or not parts[3]:
        return {}
    service, region, resource = parts[2], parts[3], parts[5]
    if service == "sagemaker" and resource.startswith("processing-job/"):
        return {
            "job": f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
            f"#/processing-jobs/{handle.job_id}"
        }
    if service == "s3" and resource.startswith("job/"):
        return {
            "job": f"https://{region}.console.aws.amazon.com/s3/jobs/{resource[4:]}?region={region}"
        }
    return {}

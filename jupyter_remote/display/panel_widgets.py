"""The widgets of a job panel (the only module of the job panel that imports ipywidgets)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import ipywidgets as w

Handler = Callable[[Any], None]


def _button(description: str, icon: str, style: str, handler: Handler, css: str) -> w.Button:
    button = w.Button(
        description=description,
        icon=icon,
        button_style=style,
        layout=w.Layout(width="auto", display="none"),
    )
    button.add_class(css)
    button.on_click(handler)
    return button


def build_panel_widgets(
    *,
    on_stop: Handler,
    on_stop_yes: Handler,
    on_stop_no: Handler,
    on_detach: Handler,
    on_confirm: Handler,
    on_report: Handler,
    on_rerun: Handler,
    on_show_all: Handler,
) -> SimpleNamespace:
    """Create the panel's widgets; CSS classes (``jr-*``) name the parts for tests and styles.

    ``reruns`` holds the panels of the jobs that Re-run failed submitted, under this one.
    """
    header = w.HTML()
    header.add_class("jr-header")
    status = w.HTML()
    status.add_class("jr-status")
    bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, layout=w.Layout(width="200px"))
    bar.add_class("jr-progress")
    log = w.HTML(layout=w.Layout(width="100%"))
    log.add_class("jr-log-view")
    messages = w.HTML(layout=w.Layout(display="none"))
    messages.add_class("jr-messages-view")
    stop = _button("Stop", "stop", "danger", on_stop, "jr-stop")
    detach = _button("Detach", "unlink", "", on_detach, "jr-detach")
    confirm = _button("Confirm", "check", "success", on_confirm, "jr-confirm")
    report = _button("Download report", "download", "", on_report, "jr-report")
    rerun = _button("Re-run failed", "redo", "warning", on_rerun, "jr-rerun")
    show_all = _button("Show all", "align-justify", "", on_show_all, "jr-show-all")
    confirm_text = w.HTML()
    stop_yes = _button("Stop the job", "stop", "danger", on_stop_yes, "jr-stop-yes")
    stop_yes.layout.display = ""
    stop_no = _button("Cancel", "", "", on_stop_no, "jr-stop-no")
    stop_no.layout.display = ""
    confirm_bar = w.HBox([confirm_text, stop_yes, stop_no], layout=w.Layout(display="none"))
    confirm_bar.add_class("jr-stop-confirm")
    reruns = w.VBox()
    reruns.add_class("jr-reruns")
    box = w.VBox(
        [
            header,
            w.HBox([bar, status], layout=w.Layout(align_items="center")),
            log,
            messages,
            w.HBox([stop, detach, confirm, report, rerun, show_all]),
            confirm_bar,
            reruns,
        ],
        layout=w.Layout(
            border="1px solid var(--jp-border-color2, #ccc)", padding="4px 8px", width="100%"
        ),
    )
    box.add_class("jupyter-remote-panel")
    return SimpleNamespace(
        box=box,
        header=header,
        status=status,
        bar=bar,
        log=log,
        messages=messages,
        stop=stop,
        detach=detach,
        confirm=confirm,
        report=report,
        rerun=rerun,
        show_all=show_all,
        confirm_text=confirm_text,
        stop_yes=stop_yes,
        stop_no=stop_no,
        confirm_bar=confirm_bar,
        reruns=reruns,
    )

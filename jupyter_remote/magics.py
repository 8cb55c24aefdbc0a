"""``%%remote_process`` and ``%remote_jobs``: argument parsing only; the work is in :mod:`.api`."""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .config import RemoteSettings
from .errors import ConfigurationError, UnpicklableVariableError


def _unquote(text: str | None) -> str | None:
    """IPython's argument splitter keeps the quotes around a quoted value; drop them."""
    if text and len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _usage_errors(func: Any) -> Any:
    """Turn user mistakes into IPython UsageErrors (a short message, no traceback)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConfigurationError, UnpicklableVariableError) as exc:
            raise UsageError(str(exc)) from exc

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@magics_class
class RemoteMagics(Magics, RemoteSettings):
    """Magics that run one cell remotely. Defaults: ``%config RemoteMagics``."""

    @magic_arguments()
    @argument("--engine", default="", help="auto (default), local, or an AWS engine name.")
    @argument("--instance-type", default=None, help="e.g. ml.m5.xlarge (SageMaker's list).")
    @argument("--instance-count", type=int, default=None, help="Instances (1-100).")
    @argument("--volume-size", type=int, default=None, help="Volume per instance, GB.")
    @argument("--max-runtime", type=int, default=None, help="MaxRuntimeInSeconds.")
    @argument("--image", default=None, help="Container image URI.")
    @argument(
        "--allow-python-mismatch",
        action="store_true",
        help="Submit even if --image is known to run another Python than this notebook.",
    )
    @argument("--role", default=None, help="IAM role ARN or name for the job.")
    @argument("--profile", default=None, help="AWS profile (default: boto3's own resolution).")
    @argument("--region", default=None, help="AWS region (default: boto3's own resolution).")
    @argument(
        "--network-isolation", action="store_true", help="No network access for the container."
    )
    @argument("--subnet", action="append", default=[], metavar="ID", help="VPC subnet. Repeatable.")
    @argument(
        "--security-group",
        action="append",
        default=[],
        metavar="ID",
        help="VPC security group (with --subnet). Repeatable.",
    )
    @argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=URI",
        help="S3 input, downloaded to INPUTS[NAME] before the cell runs. Repeatable.",
    )
    @argument(
        "--output",
        action="append",
        default=[],
        metavar="NAME=URI",
        help="Folder OUTPUTS[NAME] whose files are uploaded to URI. Repeatable.",
    )
    @argument(
        "--shard", action="append", default=[], metavar="NAME", help="Shard input NAME by key."
    )
    @argument(
        "--continuous",
        action="append",
        default=[],
        metavar="NAME",
        help="Upload output NAME continuously, not at the end.",
    )
    @argument("--requirements", default=None, metavar="FILE", help="pip requirements file.")
    @argument(
        "--module",
        action="append",
        default=[],
        metavar="PATH",
        help="Local module file or package folder to ship. Repeatable.",
    )
    @argument("--config-command", default=None, help="Shell command run before the cell.")
    @argument("--env", action="append", default=[], metavar="K=V", help="Environment variable.")
    @argument(
        "--exclude", action="append", default=[], metavar="NAME", help="Do not send variable NAME."
    )
    @argument("--no-wait", action="store_true", help="Return at once; attach later.")
    @argument("--no-widgets", action="store_true", help="Plain-text progress, not the panel.")
    @argument("--dry-run", action="store_true", help="Print the request; submit nothing.")
    @argument("--timeout", type=float, default=None, help="Stop waiting after N seconds.")
    @cell_magic
    @_usage_errors
    def remote_process(self, line: str, cell: str) -> Any:
        """Run this cell as a SageMaker Processing job (or locally) and write its results back.

        The names the cell reads are sent with it; the names it assigns (and the variables it
        changes in place) come back into the notebook. Inside the cell, ``INPUTS[name]`` and
        ``OUTPUTS[name]`` are local folder paths. With no AWS credentials the job runs on the
        local engine, against an embedded S3 endpoint.

        Example::

            %%remote_process --input raw=s3://demo/raw/ --output out=s3://demo/out/
            agg = summarize(df)
            agg.to_csv(f"{OUTPUTS['out']}/agg.csv")

        Defaults come from ``%config RemoteMagics`` and JUPYTER_REMOTE_* environment variables.
        A remote exception is raised here as its own type, with the remote traceback. Ctrl-C
        stops waiting, not the job: ``jupyter_remote.attach(JOB_ID)`` or ``%remote_jobs``.
        """
        from . import api
        from .display import make_display

        args = parse_argstring(self.remote_process, line)
        job = api.remote_process(
            cell,
            user_ns=self.shell.user_ns,
            engine=args.engine,
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            volume_size=args.volume_size,
            max_runtime=args.max_runtime,
            image=args.image,
            role=args.role,
            inputs=args.input,
            outputs=args.output,
            shard=args.shard,
            continuous=args.continuous,
            requirements=args.requirements,
            modules=args.module,
            config_command=_unquote(args.config_command),
            env=args.env,
            exclude=args.exclude,
            allow_python_mismatch=args.allow_python_mismatch,
            network_isolation=args.network_isolation,
            subnets=args.subnet,
            security_groups=args.security_group,
            profile=args.profile,
            region=args.region,
            wait=not args.no_wait,
            dry_run=args.dry_run,
            timeout=args.timeout,
            settings=self,
            display=make_display(widgets=False) if args.no_widgets else None,
        )
        return job if args.no_wait else None

    @magic_arguments()
    @argument("--engine", default=None, help="Only jobs of this engine.")
    @argument("--active", action="store_true", help="Only jobs that have not ended.")
    @argument("--state", default=None, help="Only jobs in this state (e.g. Failed).")
    @argument("--limit", type=int, default=20, help="At most this many rows (newest first).")
    @argument("--text", action="store_true", help="A text table, not the widget panel.")
    @line_magic
    @_usage_errors
    def remote_jobs(self, line: str) -> None:
        """List the jobs recorded in the job store (they survive kernel restarts).

        In a notebook this is a live panel (logs, Stop, Attach, Remove per job); ``--text`` or
        ``%config RemoteMagics.widgets = False`` prints a table. Re-attach from code with
        ``jupyter_remote.attach(JOB_ID)``.
        """
        from . import api
        from .display.kernel import widgets_available
        from .display.text import jobs_table

        args = parse_argstring(self.remote_jobs, line)
        if self.widgets and not args.text and widgets_available():
            from IPython.display import display

            from .display.jobs_panel import JobsPanel

            state = "active" if args.active else args.state
            panel = JobsPanel(
                engine=args.engine,
                state=state,
                limit=args.limit,
                user_ns=self.shell.user_ns,
                poll_interval=self.poll_interval,
            )
            display(panel)
            return
        records = api.jobs(engine=args.engine, active_only=args.active)
        records = [r for r in records if args.state in (None, r.state)][: args.limit]
        print(jobs_table(records))

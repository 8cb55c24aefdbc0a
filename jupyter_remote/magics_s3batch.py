"""``%%s3batch``: argument parsing only; the work is in :mod:`.s3batch`."""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .config import RemoteSettings
from .magics import _usage_errors
from .spec.lambda_function import DEFAULT_EPHEMERAL
from .spec.s3batch import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MEMORY,
    DEFAULT_PRIORITY,
    DEFAULT_SCHEMA,
    DEFAULT_TIMEOUT,
)


@magics_class
class S3BatchMagics(Magics):
    """The ``%%s3batch`` cell magic; defaults come from ``%config RemoteMagics``."""

    def settings(self) -> RemoteSettings:
        """The RemoteMagics instance's settings when it is registered, else the defaults."""
        registered = self.shell.magics_manager.registry.get("RemoteMagics")
        return registered if isinstance(registered, RemoteSettings) else RemoteSettings()

    @magic_arguments()
    @argument(
        "--manifest", default=None, metavar="S3URI", help="CSV manifest: Bucket,Key[,VersionId]."
    )
    @argument("--bucket", default=None, help="Process every object of this bucket ...")
    @argument("--prefix", default=None, help="... whose key starts with this prefix.")
    @argument(
        "--manifest-generator",
        action="store_true",
        help="Let the job list --bucket/--prefix itself (CreateJob ManifestGenerator) instead "
        "of listing it here into a CSV manifest.",
    )
    @argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"Invocations at a time (default {DEFAULT_CONCURRENCY}).",
    )
    @argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT,
        help=f"Seconds per invocation, 1-900 (default {DEFAULT_TIMEOUT}).",
    )
    @argument(
        "--memory",
        type=int,
        default=DEFAULT_MEMORY,
        help=f"Lambda memory, MB, 128-10240 (default {DEFAULT_MEMORY}).",
    )
    @argument(
        "--ephemeral-storage",
        type=int,
        default=DEFAULT_EPHEMERAL,
        metavar="MB",
        help=f"The function's /tmp, MB, 512-10240 (default {DEFAULT_EPHEMERAL}).",
    )
    @argument(
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="An environment variable of the function. Repeatable; 4 KB in all.",
    )
    @argument(
        "--layer",
        action="append",
        default=[],
        metavar="ARN",
        help="A Lambda layer version ARN (AWS engines only). Repeatable, up to 5.",
    )
    @argument(
        "--user-arg",
        action="append",
        default=[],
        metavar="K=V",
        help="Keyword argument for process() (schema 2.0 UserArguments). Repeatable, up to 10.",
    )
    @argument(
        "--schema",
        default=DEFAULT_SCHEMA,
        choices=["1.0", "2.0"],
        help=f"Invocation schema version (default {DEFAULT_SCHEMA}).",
    )
    @argument(
        "--report-scope",
        default="AllTasks",
        choices=["AllTasks", "FailedTasksOnly"],
        help="Which tasks the completion report (and the table) lists.",
    )
    @argument(
        "--confirm", action="store_true", help="Create the job Suspended; job.confirm() runs it."
    )
    @argument(
        "--priority",
        type=int,
        default=DEFAULT_PRIORITY,
        help=f"Job priority, higher first (default {DEFAULT_PRIORITY}).",
    )
    @argument("--requirements", default=None, metavar="FILE", help="pip requirements for Lambda.")
    @argument(
        "--exclude", action="append", default=[], metavar="NAME", help="Do not send variable NAME."
    )
    @argument("--output-var", default=None, metavar="NAME", help="Store the result table in NAME.")
    @argument("--engine", default="", help="auto (default), local, or an AWS engine name.")
    @argument("--no-wait", action="store_true", help="Return the job at once; attach later.")
    @argument(
        "--allow-bucket",
        action="append",
        default=[],
        metavar="NAME",
        help="Another bucket the function may read/write (s3batch engine's Lambda role).",
    )
    @argument(
        "--tag",
        action="append",
        default=[],
        metavar="K=V",
        help="A tag of the S3 Batch job (CreateJob Tags). Repeatable, up to 50.",
    )
    @argument(
        "--lambda-role",
        default=None,
        metavar="ROLE",
        help="The function's execution role (name or ARN); default: a scoped role, created.",
    )
    @argument(
        "--batch-role",
        default=None,
        metavar="ROLE",
        help="The role S3 Batch Operations assumes (name or ARN); default: a scoped role.",
    )
    @argument(
        "--expected-seconds",
        type=float,
        default=1.0,
        help="Expected seconds per object, for --dry-run's cost estimate (default 1).",
    )
    @argument("--dry-run", action="store_true", help="Print the requests; submit nothing.")
    @argument("--no-widgets", action="store_true", help="Plain text progress, no widget panel.")
    @cell_magic
    @_usage_errors
    def s3batch(self, line: str, cell: str) -> Any:
        """Run this cell's ``process(bucket, key)`` on every object of a manifest (S3 Batch).

        The cell becomes a Lambda function and an S3 Batch Operations job that invokes it once
        per object: listed in ``--manifest`` (a CSV of ``Bucket,Key`` rows, keys URL-encoded),
        or every object under ``--bucket``/``--prefix``. Inside ``process`` the key is already
        decoded. Its return value (as JSON) is the task's result; raising
        ``jupyter_remote.TemporaryFailure`` asks for a retry, ``PermanentFailure`` or any other
        exception fails the task with its message. A cell may instead define a raw Lambda
        ``handler(event, context)``. Notebook variables the cell reads travel with it, as with
        %%remote_process. With no AWS credentials the job runs on the local engine.

        Afterwards the cell's value is a table of every task (bucket, key, version, status,
        result, error); ``--output-var`` stores it. A job that ends Failed (more than half of at
        least 1,000 tasks failed, an unreadable manifest) raises.

        Example::

            %%s3batch --bucket photos --prefix raw/ --concurrency 8 --output-var thumbs
            from PIL import Image
            import io, boto3
            s3 = boto3.client("s3")
            def process(bucket, key):
                img = Image.open(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
                img.thumbnail((128, 128)); out = io.BytesIO(); img.save(out, "PNG")
                s3.put_object(Bucket=bucket, Key=f"thumbs/{key}", Body=out.getvalue())
                return {"w": img.width, "h": img.height}
        """
        from . import s3batch as api
        from .display import make_display

        args = parse_argstring(self.s3batch, line)
        job = api.s3batch(
            cell,
            user_ns=self.shell.user_ns,
            manifest=args.manifest,
            bucket=args.bucket,
            prefix=args.prefix,
            manifest_generator=args.manifest_generator,
            concurrency=args.concurrency,
            timeout=args.timeout,
            memory=args.memory,
            ephemeral_storage=args.ephemeral_storage,
            env=args.env,
            layers=args.layer,
            user_args=args.user_arg,
            schema=args.schema,
            report_scope=args.report_scope,
            confirm=args.confirm,
            priority=args.priority,
            requirements=args.requirements,
            exclude=args.exclude,
            output_var=args.output_var,
            allow_bucket=args.allow_bucket,
            lambda_role=args.lambda_role,
            batch_role=args.batch_role,
            tags=args.tag,
            expected_seconds=args.expected_seconds,
            engine=args.engine,
            wait=not args.no_wait,
            dry_run=args.dry_run,
            settings=self.settings(),
            display=make_display(widgets=False) if args.no_widgets else None,
        )
        if args.dry_run:
            return None
        if args.no_wait or args.confirm:
            return job
        return None if args.output_var else job.table()

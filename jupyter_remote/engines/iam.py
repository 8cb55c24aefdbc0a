"""IAM roles for AWS engines: find the one the user named, the Studio one, or make our own.

Resolution order (first match wins), all before anything is uploaded:

1. ``--role`` / ``%config RemoteMagics.role``: an ARN or a role name. A name becomes the ARN
   IAM reports (so a role under a path works); a role that does not exist is an error. When the
   caller may not read IAM (``AccessDenied`` on GetRole) the ARN is built from the account id.
2. Inside SageMaker Studio or a notebook instance: the execution role, found as the SageMaker
   SDK does (``/opt/ml/metadata/resource-metadata.json``: its ``ExecutionRoleArn``; else
   DescribeNotebookInstance for a notebook instance; else DescribeUserProfile, falling back to
   DescribeDomain's default, for Studio; else the role of the STS caller identity). No SDK import.
3. Otherwise ``jupyter-remote-processing``, created on first use, trusting only
   ``sagemaker.amazonaws.com``, with one inline policy that grants exactly the staging prefix,
   the job's input/output prefixes, the image's ECR repository and the processing log group.
   Each job adds its own prefixes to that policy (never removes: a running job keeps its access).

IAM is eventually consistent: a role created a second ago may not be assumable yet, and
CreateProcessingJob then fails with a ValidationException about the role;
:func:`retry_while_role_propagates` retries such calls a bounded number of times.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from ..errors import ConfigurationError
from ..s3uri import S3Uri
from .aws_calls import error_code, error_message
from .cloudwatch import PROCESSING_LOG_GROUP

T = TypeVar("T")

DEFAULT_ROLE_NAME = "jupyter-remote-processing"
POLICY_NAME = "jupyter-remote-processing"
STUDIO_METADATA = Path("/opt/ml/metadata/resource-metadata.json")
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
MAX_INLINE_POLICY_CHARS = 10_240  # IAM's limit for a role's inline policies, whitespace excluded
PROPAGATION_DELAYS = (2.0, 3.0, 5.0, 8.0, 10.0, 10.0, 10.0)  # ~48 s in all
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::(\d{12}):role/(?:[\w+=,.@\-]+/)*([\w+=,.@\-]+)$")
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+)[:@]"
)
_VPC_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
]


@dataclass(frozen=True)
class RoleChoice:
    """The role a job will run as; ``managed`` means ours, to create or extend before submit."""

    arn: str
    source: str  # "option", "studio" or "default"
    managed: bool = False


def role_arn(name: str, *, account: str, partition: str = "aws") -> str:
    """The ARN of a role name (``path/name`` keeps its path)."""
    return f"arn:{partition}:iam::{account}:role/{name.strip('/')}"


def trust_policy(principal: str = SAGEMAKER_PRINCIPAL) -> dict[str, Any]:
    """Only the service ``principal`` (SageMaker unless told) may assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": "sts:AssumeRole",
            }
        ],
    }


# -- resolution ------------------------------------------------------------------------------
def resolve_role(
    requested: str | None,
    *,
    iam: Any,
    sagemaker: Any,
    identity: Any,
    metadata_path: Path | None = None,
) -> RoleChoice:
    """Find the role to run as (see the module docstring for the order)."""
    if requested:
        return RoleChoice(_named_role(requested, iam=iam, identity=identity), "option")
    studio = studio_execution_role(
        metadata_path or STUDIO_METADATA, sagemaker=sagemaker, iam=iam, identity=identity
    )
    if studio:
        return RoleChoice(studio, "studio")
    arn = role_arn(DEFAULT_ROLE_NAME, account=identity.account, partition=identity.partition)
    return RoleChoice(arn, "default", managed=True)


def _named_role(
    requested: str,
    *,
    iam: Any,
    identity: Any,
    option: str = "--role",
    managed: str = DEFAULT_ROLE_NAME,
) -> str:
    from botocore.exceptions import ClientError

    if requested.startswith("arn:"):
        match = _ROLE_ARN.match(requested)
        if not match:
            raise ConfigurationError(
                f"{option} {requested!r} is not an IAM role ARN "
                "(arn:aws:iam::<12 digits>:role/<name>)"
            )
        if match[1] != identity.account:
            return requested  # another account's role: only SageMaker can tell us about it
        name = match[2]
    else:
        name = requested.strip("/").rsplit("/", 1)[-1]
    try:
        found = iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            raise ConfigurationError(
                f"{option} {requested!r}: no IAM role named {name!r} in account "
                f"{identity.account}. Check the name, or leave {option} out to let "
                f"jupyter-remote create {managed!r} with a policy scoped to this job."
            ) from exc
        # Many users may pass roles without being allowed to read IAM; trust what they gave.
        found = None
    if requested.startswith("arn:"):
        return requested
    return found or role_arn(requested, account=identity.account, partition=identity.partition)


def studio_execution_role(
    metadata_path: Path, *, sagemaker: Any, iam: Any, identity: Any
) -> str | None:
    """The execution role of this SageMaker Studio space or notebook instance, if we are in one."""
    from botocore.exceptions import ClientError

    try:
        metadata = json.loads(metadata_path.read_text())
    except (OSError, ValueError):
        return None
    if metadata.get("ExecutionRoleArn"):
        return str(metadata["ExecutionRoleArn"])
    domain, profile = metadata.get("DomainId"), metadata.get("UserProfileName")
    try:
        if domain is None and metadata.get("ResourceName"):
            described = sagemaker.describe_notebook_instance(
                NotebookInstanceName=metadata["ResourceName"]
            )
            return str(described["RoleArn"])
        if domain and profile:
            described = sagemaker.describe_user_profile(DomainId=domain, UserProfileName=profile)
            role = described.get("UserSettings", {}).get("ExecutionRole")
            if role:
                return str(role)
        if domain:
            described = sagemaker.describe_domain(DomainId=domain)
            # A shared space (no user profile) runs with the domain's default space role.
            keys = ("DefaultUserSettings",) if profile else ("DefaultSpaceSettings",)
            for key in (*keys, "DefaultUserSettings"):
                role = (described.get(key) or {}).get("ExecutionRole")
                if role:
                    return str(role)
    except ClientError:
        pass  # not allowed to describe: the caller identity below is the same role anyway
    return _assumed_role_arn(identity, iam=iam)


def _assumed_role_arn(identity: Any, *, iam: Any) -> str | None:
    from botocore.exceptions import ClientError

    match = re.match(r"^arn:([\w-]+):sts::(\d{12}):assumed-role/([^/]+)/", identity.arn)
    if not match:
        return None
    partition, account, name = match.groups()
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError:
        return role_arn(name, account=account, partition=partition)


# -- the policy ------------------------------------------------------------------------------
@dataclass
class Grants:
    """What the managed role may touch: S3 prefixes to read and to write, ECR repos, a VPC."""

    read: set[str] = field(default_factory=set)
    write: set[str] = field(default_factory=set)
    repositories: set[str] = field(default_factory=set)
    vpc: bool = False

    def merged(self, other: Grants) -> Grants:
        """Both grant sets together."""
        return Grants(
            self.read | other.read,
            self.write | other.write,
            self.repositories | other.repositories,
            self.vpc or other.vpc,
        )

    def covers(self, other: Grants) -> bool:
        """Whether everything ``other`` needs is already granted here."""
        return (
            all(_covered(uri, self.read) for uri in other.read)
            and all(_covered(uri, self.write) for uri in other.write)
            and other.repositories <= self.repositories
            and (self.vpc or not other.vpc)
        )


def _covered(uri: str, prefixes: Iterable[str]) -> bool:
    return any(uri.startswith(prefix) for prefix in prefixes)


def _minimal(prefixes: set[str]) -> list[str]:
    """Drop prefixes that a shorter one already covers."""
    kept: list[str] = []
    for prefix in sorted(prefixes, key=len):
        if not _covered(prefix, kept):
            kept.append(prefix)
    return sorted(kept)


def grants_for_request(request: dict[str, Any], staging: S3Uri, partition: str) -> Grants:
    """The grants one CreateProcessingJob request needs."""
    staging_uri = str(staging.as_prefix())
    grants = Grants(read={staging_uri}, write={staging_uri})
    for item in request.get("ProcessingInputs", []):
        s3 = item.get("S3Input")
        if s3:
            grants.read.add(str(S3Uri.parse(s3["S3Uri"])))
    for item in (request.get("ProcessingOutputConfig") or {}).get("Outputs", []):
        s3 = item.get("S3Output")
        if s3:
            grants.write.add(str(S3Uri.parse(s3["S3Uri"])))
    image = _ECR_IMAGE.match(request["AppSpecification"]["ImageUri"])
    if image:
        grants.repositories.add(
            f"arn:{partition}:ecr:{image['region']}:{image['account']}:repository/{image['repo']}"
        )
    grants.vpc = bool((request.get("NetworkConfig") or {}).get("VpcConfig"))
    return grants


def _object_arn(uri: str, partition: str) -> str:
    parsed = S3Uri.parse(uri)
    return f"arn:{partition}:s3:::{parsed.bucket}/{parsed.key}*"


def processing_policy(grants: Grants, *, partition: str, region: str, account: str) -> dict:
    """The inline policy document for ``grants``; ``"*"`` only where IAM allows nothing else."""
    read, write = _minimal(grants.read), _minimal(grants.write)
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadInputsAndStaging",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [_object_arn(u, partition) for u in read],
        },
        {
            "Sid": "WriteOutputsAndResults",
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
            "Resource": [_object_arn(u, partition) for u in write],
        },
    ]
    by_bucket: dict[str, set[str]] = {}
    for uri in read:
        parsed = S3Uri.parse(uri)
        by_bucket.setdefault(parsed.bucket, set()).add(parsed.key)
    for index, (bucket, keys) in enumerate(sorted(by_bucket.items())):
        statement: dict[str, Any] = {
            "Sid": f"ListPrefixes{index}",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": f"arn:{partition}:s3:::{bucket}",
        }
        if "" not in keys:
            statement["Condition"] = {"StringLike": {"s3:prefix": [f"{k}*" for k in sorted(keys)]}}
        statements.append(statement)
    group = f"arn:{partition}:logs:{region}:{account}:log-group:{PROCESSING_LOG_GROUP}"
    statements.append(
        {
            "Sid": "ProcessingLogs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            "Resource": [group, f"{group}:*"],
        }
    )
    # PutMetricData has no resource-level permissions; the namespace condition narrows it.
    statements.append(
        {
            "Sid": "ProcessingMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": "*",
            "Condition": {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        }
    )
    if grants.repositories:
        statements.append(
            {  # GetAuthorizationToken is account-wide by design: IAM accepts only "*".
                "Sid": "EcrLogin",
                "Effect": "Allow",
                "Action": ["ecr:GetAuthorizationToken"],
                "Resource": "*",
            }
        )
        statements.append(
            {
                "Sid": "EcrPullImage",
                "Effect": "Allow",
                "Action": [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                "Resource": sorted(grants.repositories),
            }
        )
    if grants.vpc:
        statements.append(
            {  # SageMaker's documented VPC permissions; the Describe* calls accept only "*".
                "Sid": "VpcNetworkInterfaces",
                "Effect": "Allow",
                "Action": _VPC_ACTIONS,
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def grants_from_policy(document: dict[str, Any]) -> Grants:
    """Read back the grants of a policy written by :func:`processing_policy`."""
    grants = Grants()

    def resources(statement: dict[str, Any]) -> list[str]:
        value = statement.get("Resource", [])
        return [value] if isinstance(value, str) else list(value)

    def uris(statement: dict[str, Any]) -> set[str]:
        found = set()
        for arn in resources(statement):
            match = re.match(r"^arn:[\w-]+:s3:::([^/]+)/(.*)\*$", arn)
            if match:
                found.add(f"s3://{match[1]}/{match[2]}")
        return found

    for statement in document.get("Statement", []):
        sid = statement.get("Sid", "")
        if sid == "ReadInputsAndStaging":
            grants.read |= uris(statement)
        elif sid == "WriteOutputsAndResults":
            grants.write |= uris(statement)
        elif sid == "EcrPullImage":
            grants.repositories |= set(resources(statement))
        elif sid == "VpcNetworkInterfaces":
            grants.vpc = True
    return grants


def _policy_document(raw: Any) -> dict[str, Any]:
    # botocore decodes IAM's URL-encoded policy documents; older stacks hand back the string.
    if isinstance(raw, str):
        return json.loads(unquote(raw))
    return dict(raw)


# -- the managed role ------------------------------------------------------------------------
def ensure_processing_role(
    iam: Any,
    *,
    request: dict[str, Any],
    staging: S3Uri,
    identity: Any,
    region: str,
    role_name: str = DEFAULT_ROLE_NAME,
) -> bool:
    """Create our role if missing and make its policy cover ``request``; True if IAM changed.

    A True answer means the role or its policy is seconds old: the caller should expect IAM's
    eventual consistency (see :func:`retry_while_role_propagates`).
    """
    from botocore.exceptions import ClientError

    partition = identity.partition
    wanted = grants_for_request(request, staging, partition)
    changed = ensure_role_exists(
        iam,
        role_name,
        principal=SAGEMAKER_PRINCIPAL,
        description="Runs jupyter-remote SageMaker Processing jobs (created on first use)",
        advice="Pass --role with a SageMaker execution role.",
    )
    # Read-modify-write; re-check afterwards so a concurrent kernel's update cannot drop ours.
    for _ in range(3):
        current = _current_grants(iam, role_name)
        if current.covers(wanted):
            return changed
        document = processing_policy(
            current.merged(wanted), partition=partition, region=region, account=identity.account
        )
        text = json.dumps(document, separators=(",", ":"))
        if len(text) > MAX_INLINE_POLICY_CHARS:
            raise ConfigurationError(
                f"the inline policy {POLICY_NAME!r} of role {role_name!r} would exceed IAM's "
                f"{MAX_INLINE_POLICY_CHARS} characters. Remove it (aws iam delete-role-policy "
                f"--role-name {role_name} --policy-name {POLICY_NAME}) to start afresh, or pass "
                "--role with a role of your own."
            )
        try:
            iam.put_role_policy(RoleName=role_name, PolicyName=POLICY_NAME, PolicyDocument=text)
        except ClientError as exc:
            raise _iam_error(exc, "update the policy of", role_name) from exc
        changed = True
    return changed


def _current_grants(iam: Any, role_name: str) -> Grants:
    from botocore.exceptions import ClientError

    try:
        raw = iam.get_role_policy(RoleName=role_name, PolicyName=POLICY_NAME)["PolicyDocument"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return Grants()
        raise _iam_error(exc, "read the policy of", role_name) from exc
    return grants_from_policy(_policy_document(raw))


def ensure_role_exists(
    iam: Any, role_name: str, *, principal: str, description: str, advice: str
) -> bool:
    """Create our managed ``role_name`` trusting ``principal`` if missing; True if created.

    An existing role of that name must trust ``principal``, else the service could not assume
    it: that is a :class:`ConfigurationError` ending with ``advice``. Two kernels creating the
    role at once is not an error.
    """
    from botocore.exceptions import ClientError

    try:
        role = iam.get_role(RoleName=role_name)["Role"]
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise _iam_error(exc, "read", role_name) from exc
    else:
        _check_trust(role, role_name, principal, advice)
        return False
    try:
        iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(trust_policy(principal)),
            Description=description,
            Tags=[{"Key": "jupyter-remote:managed", "Value": "true"}],
        )
    except ClientError as exc:
        if error_code(exc) != "EntityAlreadyExists":  # another kernel won the race
            raise _iam_error(exc, "create", role_name) from exc
    return True


def _check_trust(role: dict[str, Any], role_name: str, principal: str, advice: str) -> None:
    document = _policy_document(role.get("AssumeRolePolicyDocument") or {})
    for statement in document.get("Statement", []):
        services = (statement.get("Principal") or {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        if statement.get("Effect") == "Allow" and principal in services:
            return
    raise ConfigurationError(
        f"role {role_name!r} exists but does not trust {principal}, so it cannot be assumed for "
        f"this job. {advice}"
    )


def _iam_error(exc: BaseException, verb: str, role_name: str) -> ConfigurationError:
    return ConfigurationError(
        f"could not {verb} IAM role {role_name!r}: {error_code(exc)}: {error_message(exc)}. "
        "Ask an administrator for a SageMaker execution role and pass it with --role."
    )


# -- eventual consistency ----------------------------------------------------------------------
def is_role_propagation_error(exc: BaseException) -> bool:
    """A ValidationException that says the (new) role cannot be assumed yet."""
    if error_code(exc) not in ("ValidationException", "InvalidParameterValueException"):
        return False
    message = error_message(exc).lower()
    return "role" in message and ("assum" in message or "not authorized" in message)


def retry_while_role_propagates(
    call: Callable[[], T],
    *,
    sleep: Callable[[float], None] = time.sleep,
    delays: Iterable[float] = PROPAGATION_DELAYS,
) -> T:
    """Run ``call``; while it fails because a fresh role is not assumable yet, wait and retry."""
    from botocore.exceptions import ClientError

    for delay in (*delays, None):
        try:
            return call()
        except ClientError as exc:
            if delay is None or not is_role_propagation_error(exc):
                raise
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover

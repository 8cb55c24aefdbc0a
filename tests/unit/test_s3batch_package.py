"""The Lambda package: deterministic, self-contained, limits enforced, requirements for Lambda."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile

import pytest

from jupyter_remote.engines import lambda_package as pkg
from jupyter_remote.errors import ConfigurationError
from jupyter_remote.runtime import payload
from jupyter_remote.spec.lambda_function import FunctionSettings, parse_env

KEY = b"s" * 32


def job_files(tmp_path, source="def process(bucket, key):\n    return key.upper()\n", values=None):
    path = tmp_path / "payload.bin"
    digest = payload.dump(values or {"n": 1}, path)
    document = {
        "format": 1,
        "python": pkg.PYTHON,
        "entry": "process",
        "cell": "cell.py",
        "payload": {
            "path": "payload.bin",
            "sha256": digest,
            "signature": payload.sign(KEY, "payload", digest),
        },
        "imports": {},
    }
    return {
        "job.json": json.dumps(document).encode(),
        "cell.py": source.encode(),
        "payload.bin": path,
    }


def test_package_is_deterministic_and_laid_out_for_lambda(tmp_path):
    first = pkg.build_package(job_files(tmp_path))
    for path in pkg.cache_dir().glob("by-input/*.json"):
        path.unlink()  # force a real rebuild
    first.path.unlink()
    second = pkg.build_package(job_files(tmp_path))
    assert second.sha256 == first.sha256 and second.path.exists()
    assert first.function_name == f"jupyter-remote-{first.sha256[:12]}"
    assert first.function_arn("eu-west-1", "000000000000") == (
        f"arn:aws:lambda:eu-west-1:000000000000:function:{first.function_name}:1"
    )
    with zipfile.ZipFile(second.path) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    for needed in (
        "jupyter_remote/__init__.py",
        "jupyter_remote/runtime/lambda_handler.py",
        "jupyter_remote/runtime/payload.py",
        "jupyter_remote_job/job.json",
        "jupyter_remote_job/cell.py",
        "jupyter_remote_job/payload.bin",
        "cloudpickle/__init__.py",
    ):
        assert needed in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_changed_variables_give_a_new_package(tmp_path):
    a = pkg.build_package(job_files(tmp_path, values={"n": 1}))
    b = pkg.build_package(job_files(tmp_path, values={"n": 2}))
    assert a.sha256 != b.sha256


def test_the_unpacked_package_runs_alone(tmp_path):
    """Only the package on sys.path: the stub jupyter_remote exports the failure classes."""
    source = (
        "from jupyter_remote import TemporaryFailure\n"
        "def process(bucket, key):\n"
        "    return [key, n, TemporaryFailure.__module__]\n"
    )
    built = pkg.build_package(job_files(tmp_path, source))
    root = tmp_path / "task"
    with zipfile.ZipFile(built.path) as archive:
        archive.extractall(root)
    script = (
        "import json, sys\n"
        f"sys.path[0] = {str(root)!r}\n"
        "import jupyter_remote.runtime.lambda_handler as h\n"
        "assert h.__file__.startswith(sys.path[0]), h.__file__\n"
        "event = {'invocationSchemaVersion': '2.0', 'invocationId': 'i', 'job': {'id': 'j'},"
        " 'tasks': [{'taskId': 't', 's3Key': 'a%20b', 's3VersionId': None, 's3Bucket': 'bkt'}]}\n"
        "print(json.dumps(h.handler(event, None)))\n"
    )
    env = {"JUPYTER_REMOTE_SIGNING_KEY": KEY.hex(), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, env=env, cwd=root
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)["results"][0]
    assert json.loads(result["resultString"]) == ["a b", 1, "jupyter_remote.runtime.lambda_handler"]


def test_runtime_outside_lambdas_list_is_refused_with_the_list():
    assert pkg.check_runtime("3.12") == "python3.12"
    with pytest.raises(ConfigurationError) as info:
        pkg.check_runtime("3.99")
    assert "python3.99" in str(info.value) and "python3.12" in str(info.value)
    assert "%%remote_process" in str(info.value)


def test_size_limits_suggest_alternatives(tmp_path, monkeypatch):
    monkeypatch.setattr(pkg, "UNZIPPED_LIMIT", 1000)
    with pytest.raises(ConfigurationError, match="unzipped") as info:
        pkg.build_package(job_files(tmp_path))
    assert "container image" in str(info.value) and "%%remote_process" in str(info.value)


def test_requirements_installed_for_lambda_and_cached(tmp_path):
    calls = []

    def fake_pip(command, **kwargs):
        calls.append(command)
        target = command[command.index("--target") + 1]
        import pathlib

        pathlib.Path(target, "tinylib").mkdir()
        pathlib.Path(target, "tinylib", "__init__.py").write_text("V = 1\n")
        return subprocess.CompletedProcess(command, 0, "", "")

    req = tmp_path / "requirements.txt"
    req.write_text("tinylib==1.0\n")
    built = pkg.build_package(job_files(tmp_path), requirements=req, runner=fake_pip)
    pkg.build_package(job_files(tmp_path), requirements=req, runner=fake_pip)
    assert len(calls) == 1  # the second build reused the cached install
    command = calls[0]
    for flag, value in (
        ("--platform", "manylinux2014_x86_64"),
        ("--python-version", pkg.PYTHON),
        ("--implementation", "cp"),
        ("-r", str(req)),
    ):
        assert command[command.index(flag) + 1] == value
    assert "--only-binary=:all:" in command
    with zipfile.ZipFile(built.path) as archive:
        assert "tinylib/__init__.py" in archive.namelist()


def test_failed_requirements_install_is_a_clear_error(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("no-such-package-xyz\n")

    def failing(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    with pytest.raises(ConfigurationError, match="No matching distribution"):
        pkg.build_package(job_files(tmp_path), requirements=req, runner=failing)


def test_create_function_request_is_valid_and_carries_the_settings(tmp_path):
    built = pkg.build_package(job_files(tmp_path))
    code = {"S3Bucket": "staging", "S3Key": f"lambda/{built.sha256}.zip"}
    layer = "arn:aws:lambda:us-east-1:123456789012:layer:pillow:3"
    settings = FunctionSettings(
        timeout=60, memory=1024, ephemeral_storage=2048, environment={"MODE": "x"}, layers=(layer,)
    )
    request = pkg.function_config(
        built,
        code=code,
        role="arn:aws:iam::000000000000:role/r",
        settings=settings,
        extra_env={"JUPYTER_REMOTE_SIGNING_KEY": "k"},
    )
    assert request["Handler"] == "jupyter_remote.runtime.lambda_handler.handler"
    assert request["Runtime"] == f"python{pkg.PYTHON}"
    assert request["EphemeralStorage"] == {"Size": 2048} and request["Layers"] == [layer]
    assert request["Environment"]["Variables"] == {"MODE": "x", "JUPYTER_REMOTE_SIGNING_KEY": "k"}
    assert request["MemorySize"] == 1024 and request["Timeout"] == 60


LAYER = "arn:aws:lambda:us-east-1:123456789012:layer:"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (FunctionSettings(timeout=901), "--timeout must be 1-900"),
        (FunctionSettings(timeout=0), "--timeout"),
        (FunctionSettings(memory=127), "--memory must be 128-10240"),
        (FunctionSettings(memory=10_241), "--memory"),
        (FunctionSettings(ephemeral_storage=511), "--ephemeral-storage"),
        (FunctionSettings(ephemeral_storage=10_241), "512-10240"),
        (FunctionSettings(environment={"AWS_REGION": "x"}), "--env AWS_REGION"),
        (FunctionSettings(environment={"MY_KEY": "x"}), "jupyter-remote"),
        (FunctionSettings(environment={"1BAD": "x"}), "--env '1BAD'"),
        (FunctionSettings(environment={"A-B": "x"}), "--env 'A-B'"),
        (FunctionSettings(layers=("not-an-arn",)), "--layer 'not-an-arn'"),
        (
            FunctionSettings(layers=tuple(f"{LAYER}l{i}:1" for i in range(6))),
            "at most 5",
        ),
        (
            FunctionSettings(layers=(f"{LAYER}l:1",) * 2),
            "twice",
        ),
    ],
)
def test_function_settings_outside_lambdas_limits_are_refused(settings, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        settings.check(reserved=["MY_KEY"])


def test_function_settings_within_limits_pass_and_env_size_counts_ours():
    FunctionSettings(
        timeout=900, memory=10_240, ephemeral_storage=10_240, environment={"Ab": "1"}
    ).check()
    assert parse_env(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(ConfigurationError, match="KEY=VALUE"):
        parse_env(["novalue"])
    with pytest.raises(ConfigurationError, match="--env 'A' is given twice"):
        parse_env(["A=1", "A=2"])
    big = FunctionSettings(environment={"BIG": "x" * 4050})
    big.check()
    big.request_fields()  # 4053 bytes: fits alone
    with pytest.raises(ConfigurationError, match="4096"):
        big.request_fields({"JUPYTER_REMOTE_SIGNING_KEY": "k" * 64})

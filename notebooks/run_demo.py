"""Execute a demo notebook headlessly on the local engine and say where its outputs are.

Usage: ``python notebooks/run_demo.py notebooks/01-remote-process.ipynb``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Run the notebook with nbclient; write the executed copy next to it under executed/."""
    import nbclient
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    started = time.monotonic()
    client = nbclient.NotebookClient(
        nb,
        timeout=args.timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(args.notebook.parent)}},
    )
    try:
        client.execute()
    finally:
        out_dir = args.notebook.parent / "executed"
        out_dir.mkdir(exist_ok=True)
        executed = out_dir / args.notebook.name
        nbformat.write(nb, executed)
    print(f"executed {args.notebook} in {time.monotonic() - started:.1f} s -> {executed}")
    from jupyter_remote import embedded_s3

    server = embedded_s3.status()
    if server is not None:
        print(
            f"embedded S3 endpoint {server.endpoint_url}; its buckets are folders in {server.root}"
        )
        demo_out = server.root / "demo" / "out"
        if demo_out.exists():
            for path in sorted(demo_out.rglob("*")):
                print(f"  output: {path}")
    from jupyter_remote.paths import data_dir

    print(f"job store and local job sandboxes: {data_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

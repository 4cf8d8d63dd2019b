"""
``make demo``: the seed page's example flow, with its logs shown at both ends.

1. The example exactly as on Prefect 1's logging page (imports renamed),
   with the page's environment variables, posting each record of "Task B"
   to a local receiver.
2. The same flow shipping JSON records with run context through
   structflow's HTTPHandler.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from receiver import start  # noqa: E402 - the examples folder is not a package


def run(script: str, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, str(HERE / script)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in proc.stdout.splitlines():
        print(f"  flow stdout | {line}")
    for line in proc.stderr.splitlines():
        print(f"  flow stderr | {line}")
    if proc.returncode != 0:
        sys.exit(f"{script} exited with {proc.returncode}")


def main() -> None:
    receiver = start(echo=False)
    print(f"== 1. the seed page's example, receiver on {receiver.url}")
    run(
        "logging_example.py",
        {
            "STRUCTFLOW__LOGGING__LEVEL": "DEBUG",
            "STRUCTFLOW__LOGGING__FORMAT": "%(levelname)s - %(name)s | %(message)s",
            "STRUCTFLOW_EXAMPLE_URL": receiver.url,
        },
    )
    for message in receiver.messages:
        print(f"  receiver got | {message}")
    expected = ["Beginning to run Task B with input 3", "Returning the value 10"]
    if receiver.messages != expected:
        sys.exit(f"the receiver expected {expected}, got {receiver.messages}")

    receiver.messages.clear()
    print(f"\n== 2. the same flow shipping JSON through HTTPHandler to {receiver.url}")
    run(
        "http_shipping.py",
        {"STRUCTFLOW__LOGGING__LEVEL": "DEBUG", "STRUCTFLOW_EXAMPLE_URL": receiver.url},
    )
    import json

    for record in receiver.records:
        print(f"  receiver got | {json.dumps(record)}")
    if not any(r.get("message") == "Returning the value 10" for r in receiver.records):
        sys.exit("the receiver did not get the shipped records")
    print("\nboth ends agree: every record arrived.")


if __name__ == "__main__":
    main()

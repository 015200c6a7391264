"""The committed gRPC code is what protos/ generates (`make protos`)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize(
    ("package", "proto"), [("events/grpc_api", "eventhub"), ("analytics/grpc_api", "analytics")]
)
def test_generated_code_matches_the_proto(tmp_path, package, proto):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{package}=protos",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"{package}/{proto}.proto",
        ],
        cwd=ROOT,
        check=True,
    )
    for name in (f"{proto}_pb2.py", f"{proto}_pb2_grpc.py"):
        generated = (tmp_path / package / name).read_text()
        committed = (ROOT / package / name).read_text()
        assert generated == committed, f"{name} is stale: run `make protos` and commit it"

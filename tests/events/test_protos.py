"""The committed gRPC code is what protos/eventhub.proto generates (`make protos`)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_generated_code_matches_the_proto(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Ievents/grpc_api=protos",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            "events/grpc_api/eventhub.proto",
        ],
        cwd=ROOT,
        check=True,
    )
    for name in ("eventhub_pb2.py", "eventhub_pb2_grpc.py"):
        generated = (tmp_path / "events/grpc_api" / name).read_text()
        committed = (ROOT / "events/grpc_api" / name).read_text()
        assert generated == committed, f"{name} is stale: run `make protos` and commit it"

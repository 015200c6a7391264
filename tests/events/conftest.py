"""Fixtures of the events tests: a gRPC server of the test's own and a stub talking to it."""

from __future__ import annotations

import grpc
import pytest

from events.grpc_api import eventhub_pb2_grpc as pb_grpc
from events.grpc_api.server import build_server


@pytest.fixture
def stub():
    server, port = build_server("127.0.0.1:0", workers=8)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield pb_grpc.EventServiceStub(channel)
    channel.close()
    server.stop(grace=None)

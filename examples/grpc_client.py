"""A small gRPC client: publish one event, a batch and a stream, then read events back.

    .venv/bin/python examples/grpc_client.py --key ehk_... [--target 127.0.0.1:50051]

Make a writer key with `python manage.py create_api_key demo --role writer`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.grpc_api import eventhub_pb2 as pb  # noqa: E402
from events.grpc_api import eventhub_pb2_grpc as pb_grpc  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    metadata = [("x-api-key", args.key)]
    stub = pb_grpc.EventServiceStub(grpc.insecure_channel(args.target))

    def event(amount: float) -> pb.Event:
        return pb.Event(
            event_type="payment.failed",
            user_id="demo-user",
            amount=amount,
            data_json=json.dumps({"currency": "EUR"}),
        )

    one = stub.CreateEvent(pb.CreateEventRequest(event=event(10)), metadata=metadata)
    print("CreateEvent:", one.id, one.status)
    batch = stub.CreateEvents(
        pb.CreateEventsRequest(events=[event(1), event(-1)]), metadata=metadata
    )
    print("CreateEvents:", [(r.status, [e.pointer for e in r.errors]) for r in batch.results])
    requests = (pb.StreamRequest(event=event(i), sequence=i) for i in range(3))
    for ack in stub.StreamEvents(requests, metadata=metadata):
        print("StreamEvents ack:", ack.sequence, ack.status, ack.id)
    stored = stub.GetEvents(pb.GetEventsRequest(type="payment.failed", limit=3), metadata=metadata)
    print("GetEvents:", [(e.id, e.time) for e in stored.events])


if __name__ == "__main__":
    main()

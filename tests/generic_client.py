#!/usr/bin/env python3
"""A generic gRPC client with no audiencesync protos: health, reflection, descriptor lookup.

Usage: generic_client.py HOST:PORT. Prints one JSON object; exits non-zero on any failure.
Stands in for grpcurl (not installable here); needs grpcio, grpcio-reflection,
grpcio-health-checking.
"""
import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main() -> int:
    target = sys.argv[1]
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        health = health_pb2_grpc.HealthStub(channel)
        overall = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        ingest = health.Check(
            health_pb2.HealthCheckRequest(service="audiencesync.v1.IngestService"), timeout=10
        )
        db = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(db.get_services())
        fd = db.FindFileContainingSymbol("audiencesync.v1.IngestService")
        methods = []
        for svc in fd.service:
            if svc.name == "IngestService":
                methods = [m.name for m in svc.method]
        print(
            json.dumps(
                {
                    "health": health_pb2.HealthCheckResponse.ServingStatus.Name(overall.status),
                    "ingest_health": health_pb2.HealthCheckResponse.ServingStatus.Name(
                        ingest.status
                    ),
                    "services": services,
                    "ingest_file": fd.name,
                    "ingest_methods": methods,
                    "ingest_file_deps": list(fd.dependency),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

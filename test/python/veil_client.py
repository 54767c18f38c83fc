# Independent Veil client in Python grpcio, built only from the .proto files (compiled at run time); prints a JSON summary for test/python-client.test.ts.
"""Usage: VEIL_TOKEN=... [VEIL_CANARY=...] /usr/bin/python3 veil_client.py --target 127.0.0.1:PORT --proto-root DIR

The token and canary come from the environment, not argv, so they never show up in a process list.
Every check records its outcome instead of raising, so the Node side sees the whole picture
even when one step fails.
"""

import argparse
import contextlib
import importlib
import importlib.resources
import importlib.util
import json
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

import grpc
from grpc_tools import protoc


@contextlib.contextmanager
def silenced_stderr_fd():
    # protoc reports errors from C++ straight to fd 2; a probe failure is expected, not news.
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def protoc_supports_proto3_optional(wkt: str, scratch: Path) -> bool:
    # Debian 12's python3-grpc-tools (1.14) embeds protoc 3.5.1, which predates proto3
    # `optional` (3.12 experimental, 3.15 default); newer grpcio-tools handle it natively.
    (scratch / "probe.proto").write_text('syntax = "proto3";\nmessage Probe { optional string x = 1; }\n')
    with silenced_stderr_fd():
        return protoc.main(["grpc_tools.protoc", f"-I{scratch}", f"-I{wkt}", f"--python_out={scratch}", "probe.proto"]) == 0


def strip_proto3_optional(src_root: Path, dst_root: Path, files: list[str]) -> None:
    # proto3 `optional` only adds presence tracking: the field number and wire encoding are
    # the same without it, so an old protoc can still build a wire-compatible client. What
    # is lost: HasField() on those fields, and sending an explicit default (e.g. 0).
    for rel in files:
        text = (src_root / rel).read_text()
        out = dst_root / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(re.sub(r"^(\s*)optional\s+", r"\1", text, flags=re.MULTILINE))


def compile_protos(proto_root: Path, work: Path) -> dict:
    """Compiles Veil's and the health protos into work/out; returns how it went."""
    # grpc_tools ships the well-known types (google/protobuf/timestamp.proto) as its own include dir.
    wkt = str(importlib.resources.files("grpc_tools") / "_proto")
    files = sorted(str(p.relative_to(proto_root)) for p in (proto_root / "veil" / "v1").glob("*.proto"))
    files.append("grpc/health/v1/health.proto")
    out_dir = work / "out"
    out_dir.mkdir()
    native = protoc_supports_proto3_optional(wkt, work)
    src = proto_root
    if not native:
        src = work / "src"
        strip_proto3_optional(proto_root, src, files)
    args = ["grpc_tools.protoc", f"-I{src}", f"-I{wkt}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *files]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    return {"files": len(files), "proto3Optional": "native" if native else "stripped"}


def load_health_pb2(out_dir: Path):
    # The generated module would live at grpc/health/v1, but the real `grpc` package shadows
    # that path; the message module has no Python imports of its own, so load it by file.
    path = out_dir / "grpc" / "health" / "v1" / "health_pb2.py"
    spec = importlib.util.spec_from_file_location("veil_test_health_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rpc_error(e: grpc.RpcError) -> dict:
    return {"code": e.code().name, "details": e.details()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--proto-root", required=True)
    opts = parser.parse_args()
    token = os.environ["VEIL_TOKEN"]
    canary = os.environ.get("VEIL_CANARY") or "py-canary-" + os.urandom(8).hex()
    summary: dict = {"python": sys.version.split()[0], "grpcio": grpc.__version__, "steps": {}}
    steps = summary["steps"]

    with tempfile.TemporaryDirectory(prefix="veil-py-") as tmp:
        t0 = time.monotonic()
        summary["protoc"] = compile_protos(Path(opts.proto_root), Path(tmp))
        summary["compileMs"] = round((time.monotonic() - t0) * 1000)
        out_dir = Path(tmp) / "out"
        sys.path.insert(0, str(out_dir))
        secret_pb2 = importlib.import_module("veil.v1.secret_pb2")
        secret_grpc = importlib.import_module("veil.v1.secret_pb2_grpc")
        conversation_pb2 = importlib.import_module("veil.v1.conversation_pb2")
        conversation_grpc = importlib.import_module("veil.v1.conversation_pb2_grpc")
        health_pb2 = load_health_pb2(out_dir)

        auth = (("authorization", f"Bearer {token}"),)
        with grpc.insecure_channel(opts.target) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)

            # Health needs no token: called without metadata on purpose.
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            try:
                res = check(health_pb2.HealthCheckRequest(service=""), timeout=10)
                steps["health"] = {"status": health_pb2.HealthCheckResponse.ServingStatus.Name(res.status)}
            except grpc.RpcError as e:
                steps["health"] = {"error": rpc_error(e)}

            secrets = secret_grpc.SecretServiceStub(channel)
            try:
                secrets.ListSecrets(secret_pb2.ListSecretsRequest(), timeout=10)
                steps["noToken"] = {"code": "OK"}
            except grpc.RpcError as e:
                steps["noToken"] = rpc_error(e)

            name = "PY_CANARY"
            try:
                res = secrets.SetSecrets(
                    secret_pb2.SetSecretsRequest(
                        secrets=[secret_pb2.SecretInput(name=name, text=canary, description="python canary")]
                    ),
                    metadata=auth,
                    timeout=10,
                )
                steps["set"] = {"names": [m.name for m in res.secrets], "versions": [m.version for m in res.secrets]}
            except grpc.RpcError as e:
                steps["set"] = {"error": rpc_error(e)}

            try:
                res = secrets.GetSecret(secret_pb2.GetSecretRequest(name=name), metadata=auth, timeout=10)
                steps["get"] = {
                    "name": res.meta.name,
                    "version": res.meta.version,
                    "kind": secret_pb2.ValueKind.Name(res.meta.kind),
                    "matches": res.text == canary,
                    "createdAtSeconds": res.meta.created_at.seconds,
                }
            except grpc.RpcError as e:
                steps["get"] = {"error": rpc_error(e)}

            for key, request in (
                ("badNameGet", lambda: secrets.GetSecret(secret_pb2.GetSecretRequest(name="1-not-an-env-name"), metadata=auth, timeout=10)),
                (
                    "badNameSet",
                    lambda: secrets.SetSecrets(
                        secret_pb2.SetSecretsRequest(secrets=[secret_pb2.SecretInput(name="has space", text="x" * 8)]),
                        metadata=auth,
                        timeout=10,
                    ),
                ),
                ("missing", lambda: secrets.GetSecret(secret_pb2.GetSecretRequest(name="PY_NEVER_SET"), metadata=auth, timeout=10)),
            ):
                try:
                    request()
                    steps[key] = {"code": "OK"}
                except grpc.RpcError as e:
                    steps[key] = rpc_error(e)

            conversations = conversation_grpc.ConversationServiceStub(channel)
            conv = {"events": [], "stdout": "", "stderr": "", "exitCodes": []}
            try:
                stream = conversations.StartConversation(
                    conversation_pb2.StartConversationRequest(
                        secrets=[name],
                        commands=[f'echo "${name}"', f'printf %s "${name}" | base64'],
                        end_when_done=True,
                    ),
                    metadata=auth,
                    timeout=15,
                )
                out = bytearray()
                err = bytearray()
                for event in stream:
                    kind = event.WhichOneof("event")
                    conv["events"].append(kind)
                    if kind == "started":
                        conv["secrets"] = list(event.started.secrets)
                    elif kind == "output":
                        (err if event.output.stream == conversation_pb2.STREAM_STDERR else out).extend(event.output.data)
                    elif kind == "command_exited":
                        conv["exitCodes"].append(event.command_exited.exit_code)
                conv["stdout"] = out.decode("utf-8", "replace")
                conv["stderr"] = err.decode("utf-8", "replace")
                # Printed for a human reading the test log; the value itself must never appear.
                print(conv["stdout"], end="", file=sys.stderr)
            except grpc.RpcError as e:
                conv["error"] = rpc_error(e)
            steps["conversation"] = conv

    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        traceback.print_exc()
        sys.exit(2)

#!/usr/bin/env python3
"""A protoc plugin that runs grpcio-tools' built-in gRPC Python generator.

grpcio-tools ships the generator inside its bundled protoc (`--grpc_python_out`)
rather than as a `protoc-gen-grpc_python` program, so buf cannot call it as a
plugin directly. This adapter reads buf's CodeGeneratorRequest, hands the
descriptors to `grpc_tools.protoc` and returns the files it writes.
"""

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse()
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        descriptors = work / "descriptors.pb"
        descriptors.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out = work / "out"
        out.mkdir()
        option = f"{request.parameter}:" if request.parameter else ""
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"--descriptor_set_in={descriptors}",
                f"--grpc_python_out={option}{out}",
                *request.file_to_generate,
            ]
        )
        if code != 0:
            response.error = f"grpc_tools.protoc exited with {code}"
        else:
            for path in sorted(p for p in out.rglob("*") if p.is_file()):
                generated = response.file.add()
                generated.name = path.relative_to(out).as_posix()
                generated.content = path.read_text()
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())

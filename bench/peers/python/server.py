"""BENCH PEER: the ToDo service in Python (grpcio's asyncio server), validating
the same Entra-shaped tokens as the Rust server with PyJWT (PyJWKClient over
HTTPS, RS256, iss, aud, exp/nbf with 300 s leeway, app roles or scopes per the
permission table) over an in-memory store. It exists only so
`todo-bench suite --peers` can compare like with like.

    python server.py --issuer ISS --audience AUD[,AUD] --jwks-uri URI --ca-file ca.pem [--port 0]

Stubs are generated from proto/ with grpcio-tools at start-up. Prints
`LISTENING 127.0.0.1:PORT` when ready; exits when stdin closes.
"""

import argparse
import asyncio
import os
import ssl
import sys
import tempfile
import time

import grpc
import grpc_tools
import jwt
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))

# The permission table of todo.v1.ToDoService (server/src/config.rs).
READ = ({"ToDoList.Read.All", "ToDoList.ReadWrite.All"}, {"ToDoList.Read", "ToDoList.ReadWrite"})
WRITE = ({"ToDoList.ReadWrite.All"}, {"ToDoList.ReadWrite"})


def generate_stubs(proto_dir):
    out = tempfile.mkdtemp(prefix="todo-peer-py-")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    code = protoc.main(
        [
            "protoc",
            f"-I{proto_dir}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            "todo/v1/todo.proto",
        ]
    )
    if code != 0:
        sys.exit(f"generating stubs from {proto_dir} failed")
    sys.path.insert(0, out)


class RpcError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", default="0")
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("--jwks-uri", required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--proto-dir", default=os.path.join(HERE, "..", "..", "..", "proto"))
    args = parser.parse_args()

    generate_stubs(args.proto_dir)
    from google.protobuf import empty_pb2, timestamp_pb2
    from todo.v1 import todo_pb2, todo_pb2_grpc

    jwks = jwt.PyJWKClient(args.jwks_uri, ssl_context=ssl.create_default_context(cafile=args.ca_file))
    audiences = args.audience.split(",")

    def authorize(context, need):
        values = [v for k, v in context.invocation_metadata() if k == "authorization"]
        if len(values) != 1:
            raise RpcError(grpc.StatusCode.UNAUTHENTICATED, "send exactly one authorization header")
        scheme, _, token = values[0].partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise RpcError(grpc.StatusCode.UNAUTHENTICATED, "expected a Bearer token")
        try:
            key = jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=audiences,
                issuer=args.issuer,
                leeway=300,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as e:
            raise RpcError(grpc.StatusCode.UNAUTHENTICATED, f"invalid token: {e}")
        roles = set(claims.get("roles") or [])
        scopes = set((claims.get("scp") or "").split())
        if not (roles & need[0]) and not (scopes & need[1]):
            raise RpcError(grpc.StatusCode.PERMISSION_DENIED, "needs one of " + ", ".join(sorted(need[0])))
        app_only = claims["idtyp"] == "app" if "idtyp" in claims else bool(roles) and not scopes
        return claims.get("oid", ""), app_only

    rows = {}
    last_id = [0]

    def timestamp(seconds):
        ts = timestamp_pb2.Timestamp()
        ts.FromNanoseconds(int(seconds * 1e9))
        return ts

    def visible(caller, row):
        return row is not None and (caller[1] or row.owner == caller[0])

    def description(todo):
        text = todo.description.strip()
        if not text:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "todo.description is required")
        if len(text) > 1024:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "todo.description is too long")
        return text

    def unary(need, handler):
        async def call(self, request, context):
            try:
                return handler(authorize(context, need), request)
            except RpcError as e:
                await context.abort(e.code, str(e))

        return call

    def create(caller, req):
        text = description(req.todo)
        last_id[0] += 1
        now = timestamp(time.time())
        owner = req.todo.owner if caller[1] and req.todo.owner else caller[0]
        row = todo_pb2.ToDo(id=last_id[0], owner=owner, description=text, create_time=now, update_time=now, etag="1")
        rows[row.id] = row
        return row

    def get(caller, req):
        row = rows.get(req.id)
        if not visible(caller, row):
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"to-do {req.id} not found")
        return row

    def list_(caller, req):
        if req.page_size < 0:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "page_size must not be negative")
        size = min(req.page_size or 50, 1000)
        after = int(req.page_token) if req.page_token else 0
        todos = []
        for row in rows.values():
            if row.id > after and visible(caller, row):
                todos.append(row)
                if len(todos) > size:
                    break
        more = len(todos) > size
        todos = todos[:size]
        return todo_pb2.ListToDosResponse(todos=todos, next_page_token=str(todos[-1].id) if more else "")

    def update(caller, req):
        row = rows.get(req.todo.id)
        if not visible(caller, row):
            raise RpcError(grpc.StatusCode.NOT_FOUND, "to-do not found")
        if req.todo.etag and req.todo.etag != row.etag:
            raise RpcError(grpc.StatusCode.ABORTED, "stale etag")
        row.description = description(req.todo)
        row.update_time.CopyFrom(timestamp(time.time()))
        row.etag = str(int(row.etag) + 1)
        return row

    def delete(caller, req):
        row = rows.get(req.id)
        if not visible(caller, row):
            raise RpcError(grpc.StatusCode.NOT_FOUND, "to-do not found")
        if req.etag and req.etag != row.etag:
            raise RpcError(grpc.StatusCode.ABORTED, "stale etag")
        del rows[req.id]
        return empty_pb2.Empty()

    class ToDoService(todo_pb2_grpc.ToDoServiceServicer):
        CreateToDo = unary(WRITE, create)
        GetToDo = unary(READ, get)
        ListToDos = unary(READ, list_)
        UpdateToDo = unary(WRITE, update)
        DeleteToDo = unary(WRITE, delete)

    async def serve():
        server = grpc.aio.server(options=[("grpc.max_concurrent_streams", 256)])
        todo_pb2_grpc.add_ToDoServiceServicer_to_server(ToDoService(), server)
        port = server.add_insecure_port(f"127.0.0.1:{args.port}")
        await server.start()
        print(f"LISTENING 127.0.0.1:{port}", flush=True)
        # Stop when stdin closes (the suite that started us is done).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await server.stop(1)

    asyncio.run(serve())


if __name__ == "__main__":
    main()

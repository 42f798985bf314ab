#!/usr/bin/env python3
"""Call the ToDo gRPC service from Python with an app-only Entra token.

MSAL for Python acquires the token with the OAuth2 client-credentials grant and a
client SECRET; the calls go through grpcio stubs generated from proto/.

Settings come from the environment (`todo-authority client-settings daemon` prints
all but TODO_SERVER):

  TODO_AUTHORITY       https://login.microsoftonline.com/{tenant} (a trailing /v2.0 is accepted)
  TODO_CLIENT_ID       the daemon's application (client) id
  TODO_SCOPE           api://{API client id}/.default
  TODO_CLIENT_SECRET   the daemon's client secret
  REQUESTS_CA_BUNDLE   the dev authority's ca.pem (MSAL talks HTTPS through requests)
  TODO_SERVER          host:port or http(s)://host:port (default http://127.0.0.1:50051)
  TODO_SERVER_CA_FILE  extra CA for an https TODO_SERVER (optional)
  TODO_PYTHON_STUBS    folder of the generated stubs (default: gen/python at the repo root)

It creates, reads, lists, updates and deletes one to-do of its own, checks every
answer, and exits non-zero on the first surprise.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import sys

import grpc
import msal

REPO = pathlib.Path(__file__).resolve().parents[2]
STUBS = pathlib.Path(os.environ.get("TODO_PYTHON_STUBS") or REPO / "gen" / "python")
if not (STUBS / "todo" / "v1" / "todo_pb2_grpc.py").is_file():
    sys.exit(
        f"no generated stubs in {STUBS}: run scripts/gen-stubs.sh at the repo root, or\n"
        "  python -m grpc_tools.protoc -I proto --python_out=gen/python "
        "--grpc_python_out=gen/python proto/todo/v1/todo.proto"
    )
sys.path.insert(0, str(STUBS))

from google.protobuf import field_mask_pb2  # noqa: E402
from todo.v1 import todo_pb2, todo_pb2_grpc  # noqa: E402


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set (see examples/python/README.md)")
    return value


class Failure(Exception):
    """An answer that the example did not expect."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


def expect_status(code: grpc.StatusCode, call, *args, **kwargs) -> grpc.RpcError:
    try:
        call(*args, **kwargs)
    except grpc.RpcError as error:
        check(error.code() == code, f"expected {code.name}, got {error.code().name}: {error.details()}")
        return error
    raise Failure(f"expected {code.name}, but the call succeeded")


def main() -> None:
    # MSAL wants the authority without the /v2.0 suffix that validating APIs use.
    authority = required("TODO_AUTHORITY").removesuffix("/").removesuffix("/v2.0")
    scope = required("TODO_SCOPE")
    app = msal.ConfidentialClientApplication(
        required("TODO_CLIENT_ID"),
        client_credential=required("TODO_CLIENT_SECRET"),
        authority=authority,
        # Microsoft's instance discovery cannot vouch for a dev authority or a private
        # cloud; MSAL still reads {authority}/v2.0/.well-known/openid-configuration.
        instance_discovery=False,
    )

    def token() -> dict:
        # MSAL serves from its cache until the token nears expiry.
        result = app.acquire_token_for_client(scopes=[scope])
        if "access_token" not in result:
            raise Failure(f"no token: {result.get('error')}: {result.get('error_description')}")
        return result

    def auth() -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {token()['access_token']}")]

    print(f"Acquiring a token from {authority} (client credentials, client secret)...")
    first = token()
    payload = first["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    print(f"Token for {claims['aud']}: roles {claims.get('roles')}, azpacr {claims.get('azpacr')}, "
          f"expires in {first['expires_in']} s")
    check(claims.get("azpacr") == "1", "a client secret yields azpacr 1")
    second = token()
    check(second["access_token"] == first["access_token"] and second.get("token_source") == "cache",
          "the second request is served from MSAL's cache")
    print("A second request came from MSAL's token cache.")

    server = os.environ.get("TODO_SERVER") or "http://127.0.0.1:50051"
    if server.startswith("https://"):
        ca_file = os.environ.get("TODO_SERVER_CA_FILE")
        root = pathlib.Path(ca_file).read_bytes() if ca_file else None
        channel = grpc.secure_channel(server.removeprefix("https://").rstrip("/"),
                                      grpc.ssl_channel_credentials(root))
    else:
        channel = grpc.insecure_channel(server.removeprefix("http://").rstrip("/"))
    with channel:
        stub = todo_pb2_grpc.ToDoServiceStub(channel)

        print(f"Calling {server} without a token...")
        denied = expect_status(grpc.StatusCode.UNAUTHENTICATED, stub.ListToDos,
                               todo_pb2.ListToDosRequest(), timeout=10)
        print(f"Refused as expected: UNAUTHENTICATED ({denied.details()})")

        print("Posting a to-do...")
        created = stub.CreateToDo(
            todo_pb2.CreateToDoRequest(todo=todo_pb2.ToDo(description="Bake bread (Python)")),
            metadata=auth(), timeout=10)
        check(created.id > 0, "the server assigns an id")
        check(created.description == "Bake bread (Python)", "the description is stored")
        check(created.owner == claims["oid"], "an app caller owns what it creates by default")
        print(f"Created to-do {created.id} owned by {created.owner} (etag {created.etag})")

        print(f"Reading to-do {created.id}...")
        fetched = stub.GetToDo(todo_pb2.GetToDoRequest(id=created.id), metadata=auth(), timeout=10)
        check(fetched.description == created.description, "GetToDo returns what was created")

        def list_all() -> list[todo_pb2.ToDo]:
            todos, page_token = [], ""
            while True:
                page = stub.ListToDos(todo_pb2.ListToDosRequest(page_size=100, page_token=page_token),
                                      metadata=auth(), timeout=10)
                todos.extend(page.todos)
                page_token = page.next_page_token
                if not page_token:
                    return todos

        print("Retrieving to-do's from server...")
        todos = list_all()
        check(any(t.id == created.id for t in todos), "the new to-do is listed")
        for t in todos:
            print(f"ID: {t.id}  User ID: {t.owner}  Message: {t.description}")

        print(f"Editing to-do {created.id}...")
        updated = stub.UpdateToDo(
            todo_pb2.UpdateToDoRequest(
                todo=todo_pb2.ToDo(id=created.id, description="Eat bread (Python)", etag=created.etag),
                update_mask=field_mask_pb2.FieldMask(paths=["description"])),
            metadata=auth(), timeout=10)
        check(updated.description == "Eat bread (Python)", "the description changed")
        check(updated.etag != created.etag, "an update changes the etag")
        print(f'Updated: "{updated.description}" (etag {updated.etag})')

        print("Updating again with the old etag...")
        expect_status(grpc.StatusCode.ABORTED, stub.UpdateToDo,
                      todo_pb2.UpdateToDoRequest(todo=todo_pb2.ToDo(
                          id=created.id, description="Stale", etag=created.etag)),
                      metadata=auth(), timeout=10)
        print("Refused as expected: ABORTED (stale etag)")

        print(f"Deleting to-do {created.id}...")
        stub.DeleteToDo(todo_pb2.DeleteToDoRequest(id=updated.id, etag=updated.etag),
                        metadata=auth(), timeout=10)
        expect_status(grpc.StatusCode.NOT_FOUND, stub.GetToDo,
                      todo_pb2.GetToDoRequest(id=created.id), metadata=auth(), timeout=10)
        check(all(t.id != created.id for t in list_all()), "the deleted to-do is gone")
        print(f"To-do {created.id} is gone.")
    print("Python example: OK")


if __name__ == "__main__":
    try:
        main()
    except (Failure, grpc.RpcError) as error:
        sys.exit(f"Python example FAILED: {error}")

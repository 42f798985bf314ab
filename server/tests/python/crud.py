"""Drives every RPC of todo.v1.ToDoService through Python stubs generated
from proto/ with grpcio-tools. Usage: crud.py HOST:PORT CALLER"""

import sys

import grpc
from google.protobuf import field_mask_pb2

from todo.v1 import todo_pb2, todo_pb2_grpc


def main() -> None:
    address, caller = sys.argv[1], sys.argv[2]
    metadata = [("x-test-caller", caller)]
    with grpc.insecure_channel(address) as channel:
        stub = todo_pb2_grpc.ToDoServiceStub(channel)
        created = stub.CreateToDo(
            todo_pb2.CreateToDoRequest(todo=todo_pb2.ToDo(description="from Python")),
            metadata=metadata,
        )
        assert created.id > 0 and created.description == "from Python", created
        got = stub.GetToDo(todo_pb2.GetToDoRequest(id=created.id), metadata=metadata)
        assert got == created, got
        listed = stub.ListToDos(todo_pb2.ListToDosRequest(page_size=10), metadata=metadata)
        assert [t.id for t in listed.todos] == [created.id], listed
        updated = stub.UpdateToDo(
            todo_pb2.UpdateToDoRequest(
                todo=todo_pb2.ToDo(id=created.id, description="changed", etag=created.etag),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            metadata=metadata,
        )
        assert updated.description == "changed" and updated.etag != created.etag, updated
        try:
            stub.DeleteToDo(
                todo_pb2.DeleteToDoRequest(id=created.id, etag=created.etag), metadata=metadata
            )
            raise AssertionError("a stale etag must be refused")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.ABORTED, err
        stub.DeleteToDo(
            todo_pb2.DeleteToDoRequest(id=created.id, etag=updated.etag), metadata=metadata
        )
        try:
            stub.GetToDo(todo_pb2.GetToDoRequest(id=created.id), metadata=metadata)
            raise AssertionError("deleted to-do still readable")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.NOT_FOUND, err
        try:
            stub.ListToDos(todo_pb2.ListToDosRequest())
            raise AssertionError("a call without a caller must be refused")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err
    print("python crud ok")


if __name__ == "__main__":
    main()

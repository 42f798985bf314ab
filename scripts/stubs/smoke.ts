// Exercises the TypeScript stubs that buf.gen.yaml generates into gen/ts
// (ts-proto, @grpc/grpc-js): type-checked by `tsc`, then run against a live
// server by scripts/run-examples.sh.
//
//   TODO_SERVER  host:port or http://host:port of todo-server
//   TODO_TOKEN   an access token with ToDoList.ReadWrite.All

import assert from "node:assert/strict";
import { Metadata, credentials, status, type ServiceError } from "@grpc/grpc-js";
import {
  CreateToDoRequest,
  DeleteToDoRequest,
  GetToDoRequest,
  ListToDosRequest,
  ListToDosResponse,
  ToDo,
  ToDoServiceClient,
} from "../../gen/ts/todo/v1/todo";

const server = (process.env.TODO_SERVER ?? "127.0.0.1:50051").replace(/^http:\/\//, "");
const token = process.env.TODO_TOKEN;
if (!token) {
  throw new Error("TODO_TOKEN is not set");
}

const client = new ToDoServiceClient(server, credentials.createInsecure());
const metadata = new Metadata();
metadata.set("authorization", `Bearer ${token}`);

// Promisified unary call with the bearer token.
function unary<Req, Res>(
  method: (req: Req, md: Metadata, cb: (e: ServiceError | null, r: Res) => void) => unknown,
  request: Req,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    method.call(client, request, metadata, (error, response) => (error ? reject(error) : resolve(response))),
  );
}

async function main(): Promise<void> {
  // fromPartial fills every field left out with its default.
  const created: ToDo = await unary(
    client.createToDo,
    CreateToDoRequest.fromPartial({ todo: { description: "Typed bread (TypeScript stubs)" } }),
  );
  assert.ok(Number(created.id) > 0);
  assert.ok(created.createTime instanceof Date, "timestamps decode to Date");
  console.log(`TypeScript stubs: created to-do ${created.id} at ${created.createTime.toISOString()}`);

  const listed: ListToDosResponse = await unary(client.listToDos, ListToDosRequest.fromPartial({ pageSize: 1000 }));
  assert.ok(listed.todos.some((t) => t.id === created.id));

  await unary(client.deleteToDo, DeleteToDoRequest.fromPartial({ id: created.id, etag: created.etag }));
  try {
    await unary<GetToDoRequest, ToDo>(client.getToDo, GetToDoRequest.fromPartial({ id: created.id }));
    assert.fail("the deleted to-do is still there");
  } catch (error) {
    assert.equal((error as ServiceError).code, status.NOT_FOUND);
  }
  console.log(`TypeScript stubs: deleted to-do ${created.id}; OK`);
}

main()
  .catch((error: unknown) => {
    console.error("TypeScript stubs FAILED:", error);
    process.exitCode = 1;
  })
  .finally(() => client.close());

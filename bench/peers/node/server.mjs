// BENCH PEER: the ToDo service in Node.js (@grpc/grpc-js + @grpc/proto-loader),
// validating the same Entra-shaped tokens as the Rust server with jose
// (createRemoteJWKSet + jwtVerify: RS256, iss, aud, exp/nbf with 300 s skew,
// app roles or scopes per the permission table) over an in-memory store.
// It exists only so `todo-bench suite --peers` can compare like with like.
//
//   node server.mjs --issuer ISS --audience AUD[,AUD] --jwks-uri URI [--port 0] [--proto-dir DIR]
//
// Trust the dev authority's CA with NODE_EXTRA_CA_CERTS=ca.pem. Prints
// `LISTENING 127.0.0.1:PORT` when ready; exits when stdin closes.

import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createRemoteJWKSet, jwtVerify } from "jose";

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    issuer: { type: "string" },
    audience: { type: "string" },
    "jwks-uri": { type: "string" },
    "proto-dir": { type: "string", default: path.join(here, "../../../proto") },
  },
});
for (const name of ["issuer", "audience", "jwks-uri"]) {
  if (!args[name]) throw new Error(`--${name} is required`);
}

// The permission table of todo.v1.ToDoService (server/src/config.rs).
const READ = { roles: ["ToDoList.Read.All", "ToDoList.ReadWrite.All"], scopes: ["ToDoList.Read", "ToDoList.ReadWrite"] };
const WRITE = { roles: ["ToDoList.ReadWrite.All"], scopes: ["ToDoList.ReadWrite"] };

const jwks = createRemoteJWKSet(new URL(args["jwks-uri"]));
const verifyOptions = {
  issuer: args.issuer,
  audience: args.audience.split(","),
  algorithms: ["RS256"],
  clockTolerance: 300,
};

class RpcError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** The caller of a call, or an RpcError (UNAUTHENTICATED / PERMISSION_DENIED). */
async function authorize(call, need) {
  const header = call.metadata.get("authorization");
  if (header.length !== 1) throw new RpcError(grpc.status.UNAUTHENTICATED, "send exactly one authorization header");
  const [scheme, token] = String(header[0]).split(" ");
  if (scheme.toLowerCase() !== "bearer" || !token) throw new RpcError(grpc.status.UNAUTHENTICATED, "expected a Bearer token");
  let payload;
  try {
    ({ payload } = await jwtVerify(token, jwks, verifyOptions));
  } catch (e) {
    throw new RpcError(grpc.status.UNAUTHENTICATED, `invalid token: ${e.code ?? e.message}`);
  }
  const roles = Array.isArray(payload.roles) ? payload.roles : [];
  const scopes = typeof payload.scp === "string" ? payload.scp.split(" ") : [];
  if (!roles.some((r) => need.roles.includes(r)) && !scopes.some((s) => need.scopes.includes(s))) {
    throw new RpcError(grpc.status.PERMISSION_DENIED, `needs one of ${need.roles.join(", ")}`);
  }
  const appOnly = payload.idtyp ? payload.idtyp === "app" : roles.length > 0 && scopes.length === 0;
  return { oid: payload.oid, appOnly };
}

// --- The in-memory store ------------------------------------------------------

const rows = new Map();
let lastId = 0;

function timestamp(ms) {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

function visible(caller, row) {
  return row && (caller.appOnly || row.owner === caller.oid);
}

function description(todo) {
  const text = (todo?.description ?? "").trim();
  if (!text) throw new RpcError(grpc.status.INVALID_ARGUMENT, "todo.description is required");
  if ([...text].length > 1024) throw new RpcError(grpc.status.INVALID_ARGUMENT, "todo.description is too long");
  return text;
}

// --- The service ----------------------------------------------------------------

function unary(need, handler) {
  return (call, callback) => {
    authorize(call, need)
      .then((caller) => handler(caller, call.request))
      .then(
        (response) => callback(null, response),
        (e) => callback(e instanceof RpcError ? e : { code: grpc.status.INTERNAL, message: String(e) }),
      );
  };
}

const service = {
  CreateToDo: unary(WRITE, (caller, req) => {
    const text = description(req.todo);
    const now = Date.now();
    const id = ++lastId;
    const owner = caller.appOnly && req.todo.owner ? req.todo.owner : caller.oid;
    const row = { id, owner, description: text, createTime: timestamp(now), updateTime: timestamp(now), etag: "1" };
    rows.set(id, row);
    return row;
  }),
  GetToDo: unary(READ, (caller, req) => {
    const row = rows.get(Number(req.id));
    if (!visible(caller, row)) throw new RpcError(grpc.status.NOT_FOUND, `to-do ${req.id} not found`);
    return row;
  }),
  ListToDos: unary(READ, (caller, req) => {
    if (req.pageSize < 0) throw new RpcError(grpc.status.INVALID_ARGUMENT, "page_size must not be negative");
    const size = Math.min(req.pageSize || 50, 1000);
    const after = req.pageToken ? Number(req.pageToken) : 0;
    const todos = [];
    for (const row of rows.values()) {
      if (row.id > after && visible(caller, row)) todos.push(row);
      if (todos.length > size) break;
    }
    const more = todos.length > size;
    if (more) todos.length = size;
    return { todos, nextPageToken: more ? String(todos[todos.length - 1].id) : "" };
  }),
  UpdateToDo: unary(WRITE, (caller, req) => {
    const row = rows.get(Number(req.todo?.id));
    if (!visible(caller, row)) throw new RpcError(grpc.status.NOT_FOUND, "to-do not found");
    if (req.todo.etag && req.todo.etag !== row.etag) throw new RpcError(grpc.status.ABORTED, "stale etag");
    row.description = description(req.todo);
    row.updateTime = timestamp(Date.now());
    row.etag = String(Number(row.etag) + 1);
    return row;
  }),
  DeleteToDo: unary(WRITE, (caller, req) => {
    const row = rows.get(Number(req.id));
    if (!visible(caller, row)) throw new RpcError(grpc.status.NOT_FOUND, "to-do not found");
    if (req.etag && req.etag !== row.etag) throw new RpcError(grpc.status.ABORTED, "stale etag");
    rows.delete(row.id);
    return {};
  }),
};

const definition = protoLoader.loadSync("todo/v1/todo.proto", {
  includeDirs: [args["proto-dir"]],
  longs: Number,
  defaults: true,
});
const proto = grpc.loadPackageDefinition(definition);
const server = new grpc.Server({ "grpc.max_concurrent_streams": 256 });
server.addService(proto.todo.v1.ToDoService.service, service);
server.bindAsync(`127.0.0.1:${args.port}`, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(`LISTENING 127.0.0.1:${port}`);
});
process.stdin.on("end", () => {
  server.forceShutdown();
  process.exit(0);
});
process.stdin.resume();

// Calls the ToDo gRPC service from Node.js with an app-only access token that
// MSAL Node acquires with the OAuth2 client-credentials grant and a
// CERTIFICATE credential (a signed client assertion, no secret).
//
// Settings come from the environment (`todo-authority client-settings daemon`
// prints all but TODO_SERVER):
//   TODO_AUTHORITY           https://login.microsoftonline.com/{tenant} (a trailing /v2.0 is accepted)
//   TODO_CLIENT_ID           the daemon's application (client) id
//   TODO_SCOPE               api://{API client id}/.default
//   TODO_CLIENT_CERTIFICATE  PEM certificate registered on the daemon
//   TODO_CLIENT_KEY          its PEM private key (RSA)
//   TODO_SERVER              host:port or http(s)://host:port (default http://127.0.0.1:50051)
//   TODO_SERVER_CA_FILE      extra CA for an https TODO_SERVER (optional)
//   TODO_PROTO_DIR           the proto/ folder (default: ../../proto from this file)
//   NODE_EXTRA_CA_CERTS      the dev authority's ca.pem (Node reads it at start-up)
//
// It creates, reads, lists, updates and deletes one to-do of its own, checks
// every answer, and exits non-zero on the first surprise.

import { readFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { fileURLToPath } from "node:url";
import path from "node:path";
import assert from "node:assert/strict";

import * as msal from "@azure/msal-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set (see examples/node/README.md)`);
  }
  return value;
}

// --- Token acquisition with MSAL Node ---------------------------------------

// MSAL wants the authority without the /v2.0 suffix that validating APIs use.
const authority = required("TODO_AUTHORITY").replace(/\/v2\.0\/?$/, "");
const authorityHost = new URL(authority).host;
const certificatePem = readFileSync(required("TODO_CLIENT_CERTIFICATE"), "utf8");
const privateKey = readFileSync(required("TODO_CLIENT_KEY"), "utf8");
// MSAL identifies the certificate by its SHA-256 thumbprint (hex) and signs
// the assertion with PS256 and an `x5t#S256` header, as Entra expects.
const thumbprintSha256 = new X509Certificate(certificatePem).fingerprint256.replaceAll(":", "");
const scope = required("TODO_SCOPE");

const app = new msal.ConfidentialClientApplication({
  auth: {
    clientId: required("TODO_CLIENT_ID"),
    authority,
    clientCertificate: {
      thumbprintSha256,
      privateKey,
      // Also send the certificate chain (`x5c`): needed for subject name +
      // issuer authentication in Entra, harmless otherwise.
      x5c: certificatePem,
    },
    // Listing the authority's host as known makes MSAL trust it without
    // Microsoft's instance discovery (which a dev authority or a private
    // cloud cannot answer); MSAL still reads {authority}/v2.0/.well-known/openid-configuration.
    knownAuthorities: [authorityHost],
  },
  system: {
    loggerOptions: {
      logLevel: msal.LogLevel.Error,
      piiLoggingEnabled: false,
      loggerCallback: (_level, message) => console.error(`msal: ${message}`),
    },
  },
});

// MSAL caches the token and renews it when it nears expiry, so asking before
// every call is cheap and always yields a usable token.
async function bearer() {
  const result = await app.acquireTokenByClientCredential({ scopes: [scope] });
  assert.ok(result?.accessToken, "MSAL returned no access token");
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${result.accessToken}`);
  return { metadata, result };
}

// --- gRPC client from proto/ --------------------------------------------------

const here = path.dirname(fileURLToPath(import.meta.url));
const protoDir = process.env.TODO_PROTO_DIR || path.join(here, "..", "..", "proto");
const definition = protoLoader.loadSync("todo/v1/todo.proto", {
  includeDirs: [protoDir],
  longs: String, // int64 ids arrive as decimal strings
  enums: String,
  defaults: true,
});
const todoV1 = grpc.loadPackageDefinition(definition).todo.v1;

let server = process.env.TODO_SERVER || "http://127.0.0.1:50051";
let credentials = grpc.credentials.createInsecure();
if (server.startsWith("https://")) {
  const ca = process.env.TODO_SERVER_CA_FILE ? readFileSync(process.env.TODO_SERVER_CA_FILE) : null;
  credentials = grpc.credentials.createSsl(ca);
}
server = server.replace(/^https?:\/\//, "").replace(/\/$/, "");
const client = new todoV1.ToDoService(server, credentials);

function call(method, request, metadata) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + 10_000 }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

async function callWithToken(method, request) {
  const { metadata } = await bearer();
  return call(method, request, metadata);
}

async function expectStatus(code, promise) {
  try {
    await promise;
  } catch (error) {
    assert.equal(error.code, code, `expected ${grpc.status[code]}, got ${error.code} ${error.details}`);
    return error;
  }
  assert.fail(`expected ${grpc.status[code]}, but the call succeeded`);
}

async function listAll() {
  const todos = [];
  let pageToken = "";
  do {
    const page = await callWithToken("ListToDos", { pageSize: 100, pageToken });
    todos.push(...page.todos);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return todos;
}

// --- The run ----------------------------------------------------------------------

async function main() {
  console.log(`Acquiring a token from ${authority} (client credentials, certificate ${thumbprintSha256.slice(0, 12)}…)...`);
  const { result } = await bearer();
  const claims = JSON.parse(Buffer.from(result.accessToken.split(".")[1], "base64url").toString());
  console.log(`Token for ${claims.aud}: roles ${JSON.stringify(claims.roles)}, azpacr ${claims.azpacr}, expires ${result.expiresOn.toISOString()}`);
  assert.equal(claims.azpacr, "2", "a certificate credential yields azpacr 2");
  const again = await bearer();
  assert.equal(again.result.accessToken, result.accessToken, "the second request is served from MSAL's cache");
  console.log("A second request came from MSAL's token cache.");

  console.log(`Calling ${server} without a token...`);
  const denied = await expectStatus(grpc.status.UNAUTHENTICATED, call("ListToDos", {}, new grpc.Metadata()));
  console.log(`Refused as expected: UNAUTHENTICATED (${denied.details})`);

  console.log("Posting a to-do...");
  const created = await callWithToken("CreateToDo", { todo: { description: "Bake bread (Node)" } });
  assert.ok(Number(created.id) > 0, "the server assigns an id");
  assert.equal(created.description, "Bake bread (Node)");
  assert.equal(created.owner, claims.oid, "an app caller owns what it creates by default");
  console.log(`Created to-do ${created.id} owned by ${created.owner} (etag ${created.etag})`);

  console.log(`Reading to-do ${created.id}...`);
  const fetched = await callWithToken("GetToDo", { id: created.id });
  assert.equal(fetched.description, created.description);

  console.log("Retrieving to-do's from server...");
  let todos = await listAll();
  assert.ok(todos.some((t) => t.id === created.id), "the new to-do is listed");
  for (const t of todos) {
    console.log(`ID: ${t.id}  User ID: ${t.owner}  Message: ${t.description}`);
  }

  console.log(`Editing to-do ${created.id}...`);
  const updated = await callWithToken("UpdateToDo", {
    todo: { id: created.id, description: "Eat bread (Node)", etag: created.etag },
    updateMask: { paths: ["description"] },
  });
  assert.equal(updated.description, "Eat bread (Node)");
  assert.notEqual(updated.etag, created.etag, "an update changes the etag");
  console.log(`Updated: "${updated.description}" (etag ${updated.etag})`);

  console.log("Updating again with the old etag...");
  await expectStatus(
    grpc.status.ABORTED,
    callWithToken("UpdateToDo", { todo: { id: created.id, description: "Stale", etag: created.etag } }),
  );
  console.log("Refused as expected: ABORTED (stale etag)");

  console.log(`Deleting to-do ${created.id}...`);
  await callWithToken("DeleteToDo", { id: updated.id, etag: updated.etag });
  await expectStatus(grpc.status.NOT_FOUND, callWithToken("GetToDo", { id: created.id }));
  todos = await listAll();
  assert.ok(!todos.some((t) => t.id === created.id), "the deleted to-do is gone");
  console.log(`To-do ${created.id} is gone.`);

  client.close();
  console.log("Node example: OK");
}

main().catch((error) => {
  console.error(`Node example FAILED: ${error.stack || error}`);
  client.close();
  process.exit(1);
});

// A Node.js caller of the order platform, built from the contracts in protos/
// at run time with @grpc/proto-loader: no generated code to keep in step.
//
//   import { connect, decodeStatus } from "./client.js";
//   const orders = connect("127.0.0.1:50051", { token });
//   const { order } = await orders.call("CreateOrder", request);
//
// Errors are google.rpc.Status values whose details hold a google.rpc.ErrorInfo;
// decodeStatus(error) reads them from the call's grpc-status-details-bin
// trailer. Match on reason, never on the message.

import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const here = path.dirname(fileURLToPath(import.meta.url));

/** protos/, and protos/third_party/ for google/rpc (google/protobuf comes with protobufjs). */
export const PROTO_DIRS = [
  path.resolve(here, "../../protos"),
  path.resolve(here, "../../protos/third_party"),
];

/** Where an order can end. The WatchOrder stream ends after one of these. */
export const TERMINAL_STATES = new Set([
  "ORDER_STATE_DELIVERED",
  "ORDER_STATE_CANCELLED",
  "ORDER_STATE_FAILED",
]);

// Field names as in the .proto files (order_id), enums as their names,
// int64 as decimal strings (amounts can exceed 2^53), unset fields present.
const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: PROTO_DIRS,
};

/**
 * The services of one contract, e.g. loadService("orders/v1/orders.proto", "orders.v1.OrderService").
 * @returns {typeof grpc.Client}
 */
export function loadService(file, fullName) {
  const definition = protoLoader.loadSync(file, LOADER_OPTIONS);
  let found = grpc.loadPackageDefinition(definition);
  for (const part of fullName.split(".")) found = found[part];
  return found;
}

/** Sends `authorization: Bearer <token>` with every call, over TLS or not. */
function bearer(token) {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set("authorization", `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

/**
 * @typedef {object} ConnectOptions
 * @property {string} [token]  a bearer token (make token, or .data/auth/operator.token)
 * @property {Buffer} [rootCerts]  the CA of a TLS server; plaintext without it
 * @property {Buffer} [certChain]  this caller's certificate, under mutual TLS
 * @property {Buffer} [privateKey]  its key
 * @property {number} [deadlineMs]  per unary call; 10 s by default
 */

/** A caller of one service: unary calls as promises, server streams as async iterables. */
export class ServiceClient {
  /**
   * @param {typeof grpc.Client} Service
   * @param {string} target  host:port
   * @param {ConnectOptions} options
   */
  constructor(Service, target, options = {}) {
    const credentials = options.rootCerts
      ? grpc.credentials.createSsl(options.rootCerts, options.privateKey, options.certChain)
      : grpc.credentials.createInsecure();
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.stub = new Service(target, credentials, {
      interceptors: options.token ? [bearer(options.token)] : [],
    });
  }

  /** Calls a unary method; rejects with the grpc-js error (see decodeStatus). */
  call(method, request) {
    const deadline = new Date(Date.now() + this.deadlineMs);
    return new Promise((resolve, reject) => {
      this.stub[method](request, { deadline }, (error, response) =>
        error ? reject(error) : resolve(response),
      );
    });
  }

  /** Calls a server-streaming method; iterate the result with for await. */
  stream(method, request) {
    return this.stub[method](request);
  }

  close() {
    this.stub.close();
  }
}

/** A caller of orders.v1.OrderService, the front door. */
export function connect(target, options = {}) {
  const Service = loadService("orders/v1/orders.proto", "orders.v1.OrderService");
  return new ServiceClient(Service, target, options);
}

let statusTypes;

/** google.rpc.Status and its detail types, from protos/third_party. */
function rpcTypes() {
  if (!statusTypes) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => {
      for (const dir of PROTO_DIRS) {
        const candidate = path.join(dir, target);
        if (existsSync(candidate)) return candidate;
      }
      return target; // google/protobuf/*.proto: bundled with protobufjs
    };
    root.loadSync(["google/rpc/status.proto", "google/rpc/error_details.proto"], {
      keepCase: true,
    });
    statusTypes = root;
  }
  return statusTypes;
}

/**
 * @typedef {object} DecodedStatus
 * @property {number} code  the gRPC code, e.g. 3 for INVALID_ARGUMENT
 * @property {string} message  for people; do not match on it
 * @property {Array<{type: string} & Record<string, any>>} details  e.g. type "google.rpc.ErrorInfo"
 * @property {string | undefined} reason  the ErrorInfo's reason, e.g. "ORDER_NOT_FOUND"
 */

/**
 * The google.rpc.Status of a failed call, its details decoded.
 * @param {grpc.ServiceError} error
 * @returns {DecodedStatus}
 */
export function decodeStatus(error) {
  const [raw] = error.metadata?.get("grpc-status-details-bin") ?? [];
  if (!raw) return { code: error.code, message: error.details, details: [], reason: undefined };
  const types = rpcTypes();
  const status = types.lookupType("google.rpc.Status").decode(raw);
  const details = status.details.map((any) => {
    const type = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
    const decoded = types.lookupType(type).decode(any.value);
    return { type, ...types.lookupType(type).toObject(decoded, { defaults: true }) };
  });
  const info = details.find((detail) => detail.type === "google.rpc.ErrorInfo");
  return { code: status.code, message: status.message, details, reason: info?.reason };
}

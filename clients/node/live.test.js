// The Node.js client against a running platform (tests/polyglot/test_node_client.py
// runs it against the test stack):
//
//   ORDERS_ADDRESS=127.0.0.1:50051 ORDERS_TOKEN=... ORDERS_SKU=MUG-1 node --test live.test.js
//
// The token must be an operator's (ConfirmDelivery is for operators); the SKU
// must be in stock.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, test } from "node:test";

import grpc from "@grpc/grpc-js";

import { connect, decodeStatus } from "./client.js";

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
};
const orders = connect(need("ORDERS_ADDRESS"), { token: need("ORDERS_TOKEN") });
after(() => orders.close());

function orderRequest(overrides = {}) {
  return {
    request_id: randomUUID(),
    customer_id: "cust-node",
    line_items: [{ sku: need("ORDERS_SKU"), quantity: "2" }],
    shipping_address: {
      name: "Ada Lovelace",
      line1: "12 Analytical Row",
      city: "London",
      postal_code: "N1 9GU",
      country_code: "GB",
    },
    payment_token: "tok_visa",
    ...overrides,
  };
}

/** The rejection of `promise`, which must fail. */
async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("the call succeeded");
}

test("places an order, watches it to SHIPPED and confirms its delivery", async () => {
  const { order } = await orders.call("CreateOrder", orderRequest());
  assert.equal(order.state, "ORDER_STATE_PENDING");
  assert.match(order.order_id, /^ord_/);
  assert.equal(order.total.currency_code, "USD");

  const seen = [];
  for await (const { order: now } of orders.stream("WatchOrder", { order_id: order.order_id })) {
    seen.push(now.state);
    if (now.state === "ORDER_STATE_SHIPPED") {
      assert.ok(now.tracking_number, "a shipped order has a tracking number");
      const confirmed = await orders.call("ConfirmDelivery", { order_id: order.order_id });
      assert.equal(confirmed.order.state, "ORDER_STATE_DELIVERED");
    }
  }
  // The stream ends after the terminal state.
  assert.deepEqual(seen.slice(-2), ["ORDER_STATE_SHIPPED", "ORDER_STATE_DELIVERED"]);

  const { order: got } = await orders.call("GetOrder", { order_id: order.order_id });
  assert.equal(got.state, "ORDER_STATE_DELIVERED");
  console.log(`delivered ${order.order_id} after ${seen.join(" ")}`);
});

test("a bad request's google.rpc.Status names its reason and every bad field", async () => {
  const error = await failure(orders.call("CreateOrder", orderRequest({ customer_id: "" })));
  assert.equal(error.code, grpc.status.INVALID_ARGUMENT);

  const status = decodeStatus(error);
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(status.reason, "INVALID_ARGUMENT");
  const info = status.details.find((detail) => detail.type === "google.rpc.ErrorInfo");
  assert.equal(info.domain, "orders.example.com");
  const badRequest = status.details.find((detail) => detail.type === "google.rpc.BadRequest");
  assert.deepEqual(
    badRequest.field_violations.map((violation) => violation.field),
    ["customer_id"],
  );
  console.log(`rejected with reason ${status.reason}`);
});

test("an unknown order is NOT_FOUND with reason ORDER_NOT_FOUND", async () => {
  const error = await failure(orders.call("GetOrder", { order_id: "ord_does_not_exist" }));
  assert.equal(error.code, grpc.status.NOT_FOUND);
  assert.equal(decodeStatus(error).reason, "ORDER_NOT_FOUND");
});

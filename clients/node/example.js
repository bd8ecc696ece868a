// Places an order, follows it to SHIPPED, reports its delivery, then shows
// what a failed call looks like. Against `make run`, from the repository root:
//
//   node clients/node/example.js MUG-1
//
// ORDERS_ADDRESS (default 127.0.0.1:50051) and ORDERS_TOKEN (default: the
// operator's token in .data/auth/operator.token) say where and as whom.

import { readFileSync } from "node:fs";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";

import { connect, decodeStatus } from "./client.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const token =
  process.env.ORDERS_TOKEN ??
  readFileSync(path.join(root, ".data/auth/operator.token"), "utf8").trim();
const orders = connect(process.env.ORDERS_ADDRESS ?? "127.0.0.1:50051", { token });
const sku = process.argv[2] ?? "MUG-1";

try {
  const { order } = await orders.call("CreateOrder", {
    request_id: randomUUID(),
    customer_id: "cust-42",
    line_items: [{ sku, quantity: "1" }],
    shipping_address: {
      name: "Ada Lovelace",
      line1: "12 Analytical Row",
      city: "London",
      postal_code: "N1 9GU",
      country_code: "GB",
    },
    payment_token: "tok_visa",
  });
  console.log(`placed ${order.order_id}: ${order.state}`);

  for await (const { order: now } of orders.stream("WatchOrder", { order_id: order.order_id })) {
    console.log(`  ${now.state}`);
    if (now.state === "ORDER_STATE_SHIPPED") {
      await orders.call("ConfirmDelivery", { order_id: order.order_id });
    }
  }

  await orders.call("GetOrder", { order_id: "ord_missing" });
} catch (error) {
  const status = decodeStatus(error);
  console.log(`failed: code ${status.code}, reason ${status.reason}`);
} finally {
  orders.close();
}

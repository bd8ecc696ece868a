-- The read side of orders: a projection the order workflow keeps current.
-- `version` grows with every change the workflow makes; a write carrying an
-- older version than the row's is ignored, so late or repeated writes never
-- overwrite a newer state.
CREATE TABLE orders.orders (
    order_id    text PRIMARY KEY,
    request_id  text NOT NULL UNIQUE,
    fingerprint text NOT NULL,
    customer_id text NOT NULL,
    state       text NOT NULL,
    version     integer NOT NULL,
    -- The public orders.v1.Order, as protobuf JSON.
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX orders_newest_first ON orders.orders (created_at DESC, order_id DESC);
CREATE INDEX orders_by_customer ON orders.orders (customer_id, created_at DESC, order_id DESC);

-- Every version of every order, for WatchOrder: a watcher that falls behind
-- reads what it missed from here. Writers NOTIFY channel order_events with the
-- order id after each insert.
CREATE TABLE orders.order_events (
    order_id    text NOT NULL,
    version     integer NOT NULL,
    state       text NOT NULL,
    body        jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, version)
);

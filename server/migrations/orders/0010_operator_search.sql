-- What the operators' API needs (server/orders/operations.py).
--
-- attention_required, failure_reason: copies of Order.attention_required and
-- Order.failure.reason, which otherwise live only inside the stored protobuf
-- `message`, so that orders can be searched by them. Every projection write
-- sets both (server/orders/projection.py). Protobuf cannot be decoded in SQL,
-- so rows written before this migration start false and NULL and take their
-- values at their order's next write: an order already flagged, or already
-- failed, is not found by these two filters until it changes again. Workers
-- of the release before this one leave the columns as they are when they
-- write; deploy workers of this release before relying on the search.
ALTER TABLE orders.orders
    ADD COLUMN attention_required boolean NOT NULL DEFAULT false,
    ADD COLUMN failure_reason text;

-- An operator marked the order resolved (MarkResolved). The row is kept, not
-- deleted: it is what stops the sweep for abandoned orders from flagging the
-- same ended run again.
ALTER TABLE orders.order_attention ADD COLUMN resolved_at timestamptz;

-- Every action an operator took on an order through the API: who (the
-- subject of the caller's credentials), when, what, why, and what came of
-- it. action_id is derived from (operator, request_id), which makes each
-- action idempotent by its request_id. Actions are not order versions, so
-- they are not in order_events, which holds only what the workflow wrote.
CREATE TABLE orders.operator_actions (
    action_id text PRIMARY KEY,
    operator text NOT NULL,
    request_id text NOT NULL,
    order_id text NOT NULL,
    kind text NOT NULL,
    note text NOT NULL,
    result text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operator_actions_by_order ON orders.operator_actions (order_id, created_at);

-- Orders whose workflow ended outside the saga (terminated, timed out or
-- failed through Temporal), as the orders service noticed them
-- (server/orders/abandoned.py): how the run ended and what the order still
-- held then, for an operator to put right. One row per order.
CREATE TABLE orders.order_attention (
    order_id text PRIMARY KEY,
    run_id text NOT NULL,
    workflow_status text NOT NULL,
    holdings text[] NOT NULL,
    noticed_at timestamptz NOT NULL DEFAULT now()
);

-- The workflow run that owns each order. The front door records the run it
-- started with the accepted order; the first write of a run finding none
-- claims the order (the front door crashed before writing it). A write by any
-- other run is refused: an order id gets one run, and a run started under an
-- order's id by anyone but the front door cannot rewrite that order.
-- Rows from before this migration have none, and are claimed by their run's
-- next write.
ALTER TABLE orders.orders ADD COLUMN run_id text;

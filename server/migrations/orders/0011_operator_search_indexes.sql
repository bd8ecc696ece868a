-- migrate: no-transaction
-- The indexes of the operators' search (server/orders/repository.py,
-- `search`), built without blocking writers. The orders needing attention
-- are few whatever the table's size: a partial index, newest first, as the
-- search pages. Failed orders are many: by reason, newest first.
-- A build cut short leaves an invalid index that IF NOT EXISTS would keep:
-- drop it by hand and run the migration again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_needing_attention
    ON orders.orders (created_at DESC, order_id DESC)
    WHERE attention_required;
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_by_failure_reason
    ON orders.orders (failure_reason, created_at DESC, order_id DESC)
    WHERE failure_reason IS NOT NULL;

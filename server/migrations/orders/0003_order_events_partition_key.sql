-- migrate: no-transaction
-- The unique key of the partitioned order event log (0004) must hold its
-- partition key, recorded_at. Built here, without blocking the writers, on
-- the table that 0004 turns into the partition of the rows written so far,
-- so that 0004 adopts it instead of building it under a lock.
-- A build cut short leaves an invalid index that IF NOT EXISTS would keep:
-- 0004 then builds a valid one itself; drop the invalid one by hand.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS order_events_partition_key
    ON orders.order_events (order_id, version, recorded_at);

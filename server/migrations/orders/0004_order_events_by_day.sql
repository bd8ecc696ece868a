-- The order event log, partitioned by day of recorded_at (UTC), so that days
-- past the retention are dropped whole (server/orders/maintenance.py) instead
-- of deleted row by row.
--
-- Safe while older processes still write: the swap is this one transaction;
-- the table keeps its name, columns and defaults, and their
-- `INSERT ... ON CONFLICT DO NOTHING` works on a partitioned table. The rows
-- written so far are not copied: the old table becomes the partition of
-- everything before tomorrow, and is dropped with it once past the
-- retention. Attaching it reads it once (to check the bound) while writers
-- wait; that is the only cost that grows with the log.
--
-- The key is (order_id, version, recorded_at): a key of a partitioned table
-- must hold the partition key. The writer keeps one row per version by
-- appending only the versions it stores as newest (projection.py).
-- The old key gives way to the one built by 0003, which stays unique.
ALTER TABLE orders.order_events DROP CONSTRAINT order_events_pkey;
ALTER TABLE orders.order_events RENAME TO order_events_before_days;
ALTER INDEX orders.order_events_partition_key RENAME TO order_events_before_days_key;

CREATE TABLE orders.order_events (
    order_id    text NOT NULL,
    version     integer NOT NULL,
    state       text NOT NULL,
    body        jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    message     bytea,
    PRIMARY KEY (order_id, version, recorded_at)
) PARTITION BY RANGE (recorded_at);

DO $$
DECLARE
    tomorrow timestamptz := date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        + interval '1 day';
    day timestamptz;
BEGIN
    EXECUTE format(
        'ALTER TABLE orders.order_events ATTACH PARTITION orders.order_events_before_days'
        ' FOR VALUES FROM (MINVALUE) TO (%L)', tomorrow);
    -- A week ahead; the orders service keeps creating them (maintenance.py).
    FOR ahead IN 0..6 LOOP
        day := tomorrow + ahead * interval '1 day';
        EXECUTE format(
            'CREATE TABLE orders.%I PARTITION OF orders.order_events FOR VALUES FROM (%L) TO (%L)',
            'order_events_' || to_char(day AT TIME ZONE 'UTC', 'YYYYMMDD'),
            day, day + interval '1 day');
    END LOOP;
END $$;

-- migrate: no-transaction
-- request_ids are each customer's own: two customers may place an order each
-- under the same request_id. The key becomes (customer_id, request_id), which
-- is also how the front door looks a repeated request up. Rows stored so far
-- had request_ids unique across customers, so they are unique per customer.
-- The new key is built without blocking the writers; the old one is dropped
-- after it (a quick catalog change). Front doors of the earlier release still
-- look a request up by request_id alone until they are replaced.
-- A build cut short leaves an invalid index that IF NOT EXISTS would keep:
-- drop it by hand and run the migration again.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_request_per_customer
    ON orders.orders (customer_id, request_id);
ALTER TABLE orders.orders DROP CONSTRAINT IF EXISTS orders_request_id_key;

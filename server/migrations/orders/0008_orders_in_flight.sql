-- migrate: no-transaction
-- The orders in flight (admitted, neither shipped nor ended), which admission
-- control counts per customer a few times a second
-- (server/orders/admission.py): a small index whatever the table's size.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_in_flight
    ON orders.orders (customer_id, version)
    WHERE state IN ('ORDER_STATE_PENDING', 'ORDER_STATE_RESERVED', 'ORDER_STATE_PAID',
                    'ORDER_STATE_SHIPPING', 'ORDER_STATE_CANCELLING', 'ORDER_STATE_COMPENSATING');

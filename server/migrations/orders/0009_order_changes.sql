-- Changes asked of an order in flight, as the front door accepted them, and
-- the two fences that order them against its shipment
-- (server/orders/changes.py). The front door takes a change only while the
-- fence it must pass is down; the worker raises a fence just before the step
-- it guards, and reads what was accepted before it.
--
-- changes_fenced:     the order's workflow takes the fences (orders placed
--                     since this migration); other orders are changed
--                     through their workflow alone, as before.
-- requested_address:  the last shipping address accepted (a serialized
--                     common.v1.PostalAddress); address_changes counts them.
-- cancel_requested_at, cancel_reason: the cancellation accepted, if any.
-- booking_fenced_at:  the booking request is about to go to the carrier: no
--                     address change is taken after it.
-- shipped_fenced_at:  the carrier confirmed the booking: no cancellation is
--                     taken after it.
ALTER TABLE orders.orders
    ADD COLUMN changes_fenced boolean NOT NULL DEFAULT false,
    ADD COLUMN requested_address bytea,
    ADD COLUMN address_changes integer NOT NULL DEFAULT 0,
    ADD COLUMN cancel_requested_at timestamptz,
    ADD COLUMN cancel_reason text,
    ADD COLUMN booking_fenced_at timestamptz,
    ADD COLUMN shipped_fenced_at timestamptz;

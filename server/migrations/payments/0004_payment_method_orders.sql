-- The order each payment method was given for: it is charged for that order
-- only (payments.proto, "Payment methods"). NULL for a method given without
-- an order, until its first charge binds it to that charge's order.
ALTER TABLE payments.payment_methods ADD COLUMN order_id text;

-- Methods stored before: the front door stored each one for an order, under
-- the request_id "<order_id>:<content hash>", its order ids being "ord_" and
-- 32 hex digits. Any other request_id leaves the method to its first charge.
UPDATE payments.payment_methods
   SET order_id = substring(request_id FROM '^(ord_[0-9a-f]{32}):')
 WHERE request_id ~ '^ord_[0-9a-f]{32}:';

-- Orders are stored as protobuf bytes: reading them back costs one parse in
-- C instead of a JSON parse per read. Rows written before this migration keep
-- their JSON `body` and are read from it; new writes leave `body` empty.
-- Readers that know both columns must be deployed before writers that fill
-- only `message`.
ALTER TABLE orders.orders ADD COLUMN message bytea;
ALTER TABLE orders.orders ALTER COLUMN body DROP NOT NULL;
ALTER TABLE orders.order_events ADD COLUMN message bytea;
ALTER TABLE orders.order_events ALTER COLUMN body DROP NOT NULL;

-- One shipment per order. A CANCELLED row without an address is a
-- tombstone: the order's shipment was cancelled before it was booked, so a
-- late booking is refused.
CREATE TABLE shipping.shipments (
    shipment_id        text PRIMARY KEY,
    order_id           text NOT NULL UNIQUE,
    state              text NOT NULL CHECK (state IN ('BOOKING', 'BOOKED', 'CANCELLED')),
    address            jsonb,
    item_count         integer NOT NULL DEFAULT 0,
    tracking_number    text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    -- When the simulated carrier confirms the booking. The state moves to
    -- BOOKED lazily, when the shipment is next read after this instant, so a
    -- restart of the service loses no booking.
    expected_booked_at timestamptz NOT NULL DEFAULT now(),
    booked_at          timestamptz,
    cancelled_at       timestamptz
);

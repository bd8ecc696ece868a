-- Stock and price per SKU, and the reservations orders hold on it.
CREATE TABLE inventory.stock (
    sku              text PRIMARY KEY,
    -- Units that can be reserved now.
    available        bigint NOT NULL CHECK (available >= 0),
    -- Units held by reservations in state RESERVED.
    reserved         bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    currency_code    text NOT NULL CHECK (currency_code ~ '^[A-Z]{3}$'),
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One per order. A RELEASED row with no lines is a tombstone: the order's
-- reservation was released before it was made, so a late reserve is refused.
CREATE TABLE inventory.reservations (
    order_id   text PRIMARY KEY,
    state      text NOT NULL CHECK (state IN ('RESERVED', 'COMMITTED', 'RELEASED')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inventory.reservation_lines (
    order_id text NOT NULL REFERENCES inventory.reservations ON DELETE CASCADE,
    sku      text NOT NULL REFERENCES inventory.stock,
    quantity bigint NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, sku)
);

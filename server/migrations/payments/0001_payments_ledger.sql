-- Captured payments, one per idempotency key.
CREATE TABLE payments.payments (
    payment_id            text PRIMARY KEY,
    idempotency_key       text NOT NULL UNIQUE,
    order_id              text NOT NULL,
    currency_code         text NOT NULL CHECK (currency_code ~ '^[A-Z]{3}$'),
    amount_minor          bigint NOT NULL CHECK (amount_minor > 0),
    refunded_amount_minor bigint NOT NULL DEFAULT 0
                          CHECK (refunded_amount_minor BETWEEN 0 AND amount_minor),
    state                 text NOT NULL CHECK (state IN ('CAPTURED', 'REFUNDED')),
    card_last4            text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    refunded_at           timestamptz
);
CREATE INDEX payments_by_order ON payments.payments (order_id, created_at);

-- Every movement of money, append-only: the books must balance against
-- payments.amount_minor and refunded_amount_minor.
CREATE TABLE payments.ledger (
    entry_id      bigserial PRIMARY KEY,
    payment_id    text NOT NULL REFERENCES payments.payments,
    kind          text NOT NULL CHECK (kind IN ('CHARGE', 'REFUND')),
    currency_code text NOT NULL,
    amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (payment_id, kind)
);

-- Keys refunded before any charge was made under them: a charge arriving
-- late (a retry still in flight when its order was cancelled) is refused.
CREATE TABLE payments.voided_keys (
    idempotency_key text PRIMARY KEY,
    voided_at       timestamptz NOT NULL DEFAULT now()
);

-- How often the simulated gateway saw each key, for tok_transient.
CREATE TABLE payments.gateway_attempts (
    idempotency_key text PRIMARY KEY,
    attempts        integer NOT NULL
);

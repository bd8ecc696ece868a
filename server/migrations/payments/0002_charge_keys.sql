-- What each idempotency key holds: the parameters of the first charge under
-- it and that charge's outcome, which later charges with the same parameters
-- get back. payments.payments has captures only; a declined charge and a key
-- voided before any charge are recorded here too.
CREATE TABLE payments.charge_keys (
    idempotency_key text PRIMARY KEY,
    -- The first charge's parameters; all NULL for a key voided before any
    -- charge reached the gateway under it.
    order_id        text,
    currency_code   text,
    amount_minor    bigint,
    -- HMAC-SHA256 of the card token keyed by the idempotency key (hex): tells
    -- another card apart without keeping the token, and cannot link one card
    -- across keys. NULL for charges captured before it was recorded.
    card_hash       text,
    -- PENDING: only transient gateway failures so far, a retry may capture.
    -- CAPTURED, DECLINED: the first final outcome, replayed.
    -- VOIDED: refunded before any capture; every later charge is refused.
    outcome         text NOT NULL
                    CHECK (outcome IN ('PENDING', 'CAPTURED', 'DECLINED', 'VOIDED')),
    payment_id      text UNIQUE REFERENCES payments.payments,
    created_at      timestamptz NOT NULL DEFAULT now(),
    decided_at      timestamptz,
    CHECK ((outcome = 'CAPTURED') = (payment_id IS NOT NULL)),
    CHECK ((outcome = 'PENDING') = (decided_at IS NULL)),
    CHECK (num_nulls(order_id, currency_code, amount_minor) IN (0, 3)),
    CHECK (order_id IS NOT NULL OR outcome = 'VOIDED')
);

-- Keys of the captures made so far, and the keys voided so far.
INSERT INTO payments.charge_keys
    (idempotency_key, order_id, currency_code, amount_minor, outcome, payment_id,
     created_at, decided_at)
SELECT idempotency_key, order_id, currency_code, amount_minor, 'CAPTURED', payment_id,
       created_at, created_at
  FROM payments.payments;

INSERT INTO payments.charge_keys (idempotency_key, outcome, created_at, decided_at)
SELECT idempotency_key, 'VOIDED', voided_at, voided_at
  FROM payments.voided_keys
    ON CONFLICT (idempotency_key) DO NOTHING;

-- charge_keys holds the voided keys from now on.
DROP TABLE payments.voided_keys;

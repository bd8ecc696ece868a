-- Cards kept for later charges by reference (CreatePaymentMethod), so that
-- the card token need not travel with the order.
CREATE TABLE payments.payment_methods (
    payment_method_id text PRIMARY KEY,
    -- The creating request's id: a repeat returns the same payment method.
    request_id        text NOT NULL UNIQUE,
    customer_id       text NOT NULL,
    -- The card token, never in clear: AES-256-GCM under the key `key_id` of
    -- the service's keyring (PAYMENT_METHOD_KEYS), with the payment method id
    -- as associated data so that a ciphertext moved to another row fails.
    key_id            text NOT NULL,
    token_nonce       bytea NOT NULL CHECK (length(token_nonce) = 12),
    token_ciphertext  bytea NOT NULL,
    card_last4        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

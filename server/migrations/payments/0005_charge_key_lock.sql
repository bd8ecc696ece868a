-- A key's record, read under the key's lock, in the round trip that takes the
-- lock: a charge or a refund by key took the lock and then read the record,
-- two round trips where one does. Each statement of a function reads what
-- was committed before it started, so the record read here is the one the
-- lock's last holder left. The lock is the transaction's, held until it ends.
CREATE FUNCTION payments.lock_charge_key(p_key text)
RETURNS SETOF payments.charge_keys
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_key, 0));
    RETURN QUERY SELECT * FROM payments.charge_keys k WHERE k.idempotency_key = p_key;
END
$$;

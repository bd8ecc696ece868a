-- Each change of a reservation in one round trip. These functions do what the
-- inventory service did statement by statement (BEGIN, one statement per line
-- and per row, COMMIT: five to seven round trips for an order of one line),
-- in the same order and under the same row locks, inside the one statement
-- that calls them. Stock rows are locked in SKU order, compared byte by byte
-- (COLLATE "C", as the service sorted them), so that two orders never
-- deadlock, whichever version of the service holds the other's locks.
-- A refusal raises, which rolls back every line taken before it.

-- The lines an order holds, in SKU order (NULLs for none).
CREATE FUNCTION inventory.held_lines(p_order_id text, OUT skus text[], OUT quantities bigint[])
LANGUAGE sql STABLE AS $$
    SELECT array_agg(l.sku ORDER BY l.sku COLLATE "C"),
           array_agg(l.quantity ORDER BY l.sku COLLATE "C")
      FROM inventory.reservation_lines l WHERE l.order_id = p_order_id
$$;

-- Reserves `skus` in `quantities` for an order, all lines or none. An order
-- that already holds a reservation (or a release's tombstone) is not
-- changed: what it holds is returned, with created false, for the service
-- to answer or refuse. Raises SQLSTATE IV001 (not enough stock) or IV002 (no
-- such SKU), the SKU in DETAIL.
CREATE FUNCTION inventory.reserve(
    p_order_id text,
    p_skus text[],
    p_quantities bigint[],
    OUT created boolean,
    OUT held_state text,
    OUT held_skus text[],
    OUT held_quantities bigint[]
)
LANGUAGE plpgsql AS $$
DECLARE
    line record;
BEGIN
    INSERT INTO inventory.reservations (order_id, state) VALUES (p_order_id, 'RESERVED')
        ON CONFLICT (order_id) DO NOTHING;
    created := FOUND;
    IF NOT created THEN
        SELECT r.state INTO held_state
          FROM inventory.reservations r WHERE r.order_id = p_order_id FOR UPDATE;
        SELECT h.skus, h.quantities INTO held_skus, held_quantities
          FROM inventory.held_lines(p_order_id) h;
        RETURN;
    END IF;
    FOR line IN
        SELECT u.sku, u.quantity FROM unnest(p_skus, p_quantities) AS u(sku, quantity)
         ORDER BY u.sku COLLATE "C"
    LOOP
        UPDATE inventory.stock s
           SET available = s.available - line.quantity,
               reserved = s.reserved + line.quantity,
               updated_at = now()
         WHERE s.sku = line.sku AND s.available >= line.quantity;
        IF NOT FOUND THEN
            IF EXISTS (SELECT 1 FROM inventory.stock s WHERE s.sku = line.sku) THEN
                RAISE EXCEPTION 'not enough stock of %', line.sku
                    USING ERRCODE = 'IV001', DETAIL = line.sku;
            END IF;
            RAISE EXCEPTION 'no SKU %', line.sku USING ERRCODE = 'IV002', DETAIL = line.sku;
        END IF;
        INSERT INTO inventory.reservation_lines (order_id, sku, quantity)
            VALUES (p_order_id, line.sku, line.quantity);
    END LOOP;
    held_state := 'RESERVED';
    held_skus := p_skus;
    held_quantities := p_quantities;
END
$$;

-- Moves `quantities` of `skus` by `available` and `reserved` units per unit
-- held, in SKU order (the lines as inventory.reserve keeps them).
CREATE FUNCTION inventory.move_stock(
    p_skus text[], p_quantities bigint[], p_available bigint, p_reserved bigint
)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    line record;
BEGIN
    FOR line IN
        SELECT u.sku, u.quantity FROM unnest(p_skus, p_quantities) AS u(sku, quantity)
         ORDER BY u.sku COLLATE "C"
    LOOP
        UPDATE inventory.stock s
           SET available = s.available + line.quantity * p_available,
               reserved = s.reserved + line.quantity * p_reserved,
               updated_at = now()
         WHERE s.sku = line.sku;
    END LOOP;
END
$$;

-- Commits an order's reservation: the goods leave the shelf. Returns the
-- state it found (NULL: no reservation) and its lines; only a RESERVED one
-- is changed.
CREATE FUNCTION inventory.commit_reservation(
    p_order_id text,
    OUT found_state text,
    OUT held_skus text[],
    OUT held_quantities bigint[]
)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.state INTO found_state
      FROM inventory.reservations r WHERE r.order_id = p_order_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT h.skus, h.quantities INTO held_skus, held_quantities
      FROM inventory.held_lines(p_order_id) h;
    IF found_state = 'RESERVED' THEN
        PERFORM inventory.move_stock(held_skus, held_quantities, 0, -1);
        UPDATE inventory.reservations r SET state = 'COMMITTED', updated_at = now()
         WHERE r.order_id = p_order_id;
    END IF;
END
$$;

-- Releases an order's reservation, reserved or committed: its goods go back
-- on the shelf. An order without one gets a tombstone, so that a late reserve
-- is refused. Returns the state it found (RELEASED for a tombstone made now)
-- and its lines.
CREATE FUNCTION inventory.release_reservation(
    p_order_id text,
    OUT found_state text,
    OUT held_skus text[],
    OUT held_quantities bigint[]
)
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO inventory.reservations (order_id, state) VALUES (p_order_id, 'RELEASED')
        ON CONFLICT (order_id) DO NOTHING;
    SELECT r.state INTO found_state
      FROM inventory.reservations r WHERE r.order_id = p_order_id FOR UPDATE;
    SELECT h.skus, h.quantities INTO held_skus, held_quantities
      FROM inventory.held_lines(p_order_id) h;
    IF found_state = 'RESERVED' THEN
        PERFORM inventory.move_stock(held_skus, held_quantities, 1, -1);
    ELSIF found_state = 'COMMITTED' THEN
        PERFORM inventory.move_stock(held_skus, held_quantities, 1, 0);
    END IF;
    IF found_state <> 'RELEASED' THEN
        UPDATE inventory.reservations r SET state = 'RELEASED', updated_at = now()
         WHERE r.order_id = p_order_id;
    END IF;
END
$$;

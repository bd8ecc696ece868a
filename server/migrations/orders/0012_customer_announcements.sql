-- Every write of an order announces its customer on channel
-- `order_customers`, so that the front doors' caches of ListOrders pages
-- (server/orders/page_cache.py) forget that customer's pages. A trigger
-- rather than the writers: every writer of any release announces, from the
-- moment this migration runs, and so does a change made by hand.
--
-- A page holds the orders of one customer (or of all of them), and any
-- write may add an order to it, take one off or change one: the whole
-- customer is announced, not the order. Postgres delivers a transaction's
-- notifications when it commits and sends one of several alike.
CREATE FUNCTION orders.announce_customer() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('order_customers', coalesce(NEW.customer_id, OLD.customer_id));
    RETURN NULL;
END
$$;

CREATE TRIGGER announce_customer
    AFTER INSERT OR UPDATE OR DELETE ON orders.orders
    FOR EACH ROW EXECUTE FUNCTION orders.announce_customer();

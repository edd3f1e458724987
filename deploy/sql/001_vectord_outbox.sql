-- vectord feed, part 1: the outbox, the position table, the capture trigger
-- function and the prune function. Idempotent: apply with
--   psql "$DSN" -v ON_ERROR_STOP=1 -f deploy/sql/001_vectord_outbox.sql
-- as often as you like (every file of deploy/sql/, in name order).
--
-- How it works: a trigger on the source table adds one outbox row per
-- changed row, in the writing transaction, and NOTIFYs vectord_outbox (the
-- notification is delivered at commit). Each outbox row carries the id of its
-- transaction (xid8). vectord consumes the rows of finished transactions
-- only: those below the xmin of a fresh snapshot, in (xid, seq) order, and
-- remembers how far it got. So a transaction that commits after a later one
-- is still consumed, exactly once (a plain "seq > last" would skip it).

CREATE TABLE IF NOT EXISTS vectord_outbox (
    seq        bigserial   PRIMARY KEY,
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    source     text        NOT NULL,            -- the table the change is in
    row_id     text        NOT NULL,            -- its id column, as text
    op         "char"      NOT NULL,            -- 'I', 'U', 'D', or 'T' (a TRUNCATE; row_id '')
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS vectord_outbox_xid_seq ON vectord_outbox (xid, seq);

-- One row per consumer (a vectord replica's feed name): every outbox row
-- with xid < consumed_xid has been applied durably by that consumer.
CREATE TABLE IF NOT EXISTS vectord_feed_position (
    feed         text        PRIMARY KEY,
    consumed_xid xid8        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Trigger function: TG_ARGV[0] names the id column (default 'id'). As a row
-- trigger it notes the changed row; as a statement trigger AFTER TRUNCATE, one
-- 'T' row: vectord then deletes every point whose row is gone.
CREATE OR REPLACE FUNCTION vectord_outbox_capture() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    id_col text := COALESCE(TG_ARGV[0], 'id');
    rec    jsonb;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO vectord_outbox (source, row_id, op) VALUES (TG_TABLE_NAME, '', 'T');
        PERFORM pg_notify('vectord_outbox', TG_TABLE_NAME);
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        rec := to_jsonb(OLD);
    ELSE
        rec := to_jsonb(NEW);
    END IF;
    -- An update that moves the id is a delete of the old id plus an insert.
    IF TG_OP = 'UPDATE' AND (to_jsonb(OLD) ->> id_col) IS DISTINCT FROM (rec ->> id_col) THEN
        INSERT INTO vectord_outbox (source, row_id, op)
        VALUES (TG_TABLE_NAME, to_jsonb(OLD) ->> id_col, 'D');
    END IF;
    INSERT INTO vectord_outbox (source, row_id, op)
    VALUES (TG_TABLE_NAME, rec ->> id_col, left(TG_OP, 1));
    PERFORM pg_notify('vectord_outbox', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

-- Deletes the outbox rows every registered consumer has applied. Run it from
-- cron or pg_cron, e.g. every few minutes. Returns the rows deleted. A
-- consumer that no longer exists must be removed from vectord_feed_position,
-- or it holds the outbox back.
CREATE OR REPLACE FUNCTION vectord_outbox_prune() RETURNS bigint
LANGUAGE sql AS $$
    WITH horizon AS (SELECT min(consumed_xid) AS x FROM vectord_feed_position),
         gone AS (
             DELETE FROM vectord_outbox o USING horizon h
             WHERE h.x IS NOT NULL AND o.xid < h.x
             RETURNING 1)
    SELECT count(*) FROM gone;
$$;

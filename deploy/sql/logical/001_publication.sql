-- The logical-replication source (feed_source = logical, docs/FEED.md): a
-- publication of the source table. No trigger, no outbox: vectord reads
-- PostgreSQL's WAL through a replication slot it creates itself.
-- Needs wal_level = logical on the server (a restart), and a role with the
-- REPLICATION attribute for vectord (see below). Idempotent.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'vectord') THEN
        CREATE PUBLICATION vectord FOR TABLE "Memory";
    ELSIF NOT EXISTS (SELECT 1 FROM pg_publication_tables
                      WHERE pubname = 'vectord' AND tablename = 'Memory') THEN
        ALTER PUBLICATION vectord ADD TABLE "Memory";
    END IF;
END
$$;

-- The role vectord connects as (once, by an administrator):
--   CREATE ROLE vectord LOGIN REPLICATION PASSWORD '…';
--   GRANT SELECT ON "Memory" TO vectord;

-- vectord feed, part 2: capture the changes of MemoryService's "Memory" table
-- (id column "id"): every row written, and TRUNCATE. Idempotent. For another
-- table or id column, copy this file and change the names (the trigger
-- argument is the id column).
DROP TRIGGER IF EXISTS vectord_outbox_capture ON "Memory";
CREATE TRIGGER vectord_outbox_capture
    AFTER INSERT OR UPDATE OR DELETE ON "Memory"
    FOR EACH ROW EXECUTE FUNCTION vectord_outbox_capture('id');
DROP TRIGGER IF EXISTS vectord_outbox_truncate ON "Memory";
CREATE TRIGGER vectord_outbox_truncate
    AFTER TRUNCATE ON "Memory"
    FOR EACH STATEMENT EXECUTE FUNCTION vectord_outbox_capture('id');

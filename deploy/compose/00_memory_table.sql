-- The example table of docker-compose.yml: the shape of MemoryService's
-- "Memory" table (the application owns the real one).
CREATE TABLE IF NOT EXISTS "Memory" (
    id          text PRIMARY KEY,
    "userId"    text NOT NULL,
    "agentId"   text,
    type        text,
    content     text,
    embedding   text NOT NULL,          -- JSON array of 1536 floats
    "createdAt" timestamptz NOT NULL DEFAULT now(),
    "updatedAt" timestamptz NOT NULL DEFAULT now()
);

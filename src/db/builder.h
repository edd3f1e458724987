/*
 * builder.h — the background thread that builds graph indexes behind the
 * writes: it visits every collection and inserts a batch of each shard's
 * backlog (db/shard_build.c: points stored and searchable, not in the graph
 * yet) into the graph, beside searches, on its own threads, niced so that
 * requests come first; when no shard has
 * a backlog it sleeps until woken or idle_ms pass. Writes thus cost what the
 * log and the store cost, and the graph catches up at the pace the cores
 * allow.
 */
#ifndef VD_BUILDER_H
#define VD_BUILDER_H

#include <stdint.h>

#include "db/database.h"

typedef struct vd_builder vd_builder;

/* threads: cores the builder uses (its thread and threads - 1 workers, all at
 * a lower priority than requests). */
int vd_builder_start(vd_builder **out, vd_database *db, unsigned threads, uint64_t idle_ms);
/* Stops and joins the thread (after the batch in progress). NULL is a no-op. */
void vd_builder_stop(vd_builder *b);

#endif

/*
 * mutation.h — the changes a client can make to the database, as one value
 * that is logged in the WAL (its record body) and applied to memory: live
 * writes apply it once durable (write/journal.c), recovery applies it again
 * from the log (write/recovery.c). Byte layout: top of mutation.c.
 */
#ifndef VD_MUTATION_H
#define VD_MUTATION_H

#include <stddef.h>
#include <stdint.h>

#include "db/collection.h"
#include "db/database.h"
#include "db/filter.h"
#include "db/point.h"
#include "util/strbuf.h"
#include "vectord/error.h"

/* The WAL record type of each mutation (values are part of the file format). */
typedef enum vd_mutation_type {
    VD_MUT_CREATE_COLLECTION = 1,
    VD_MUT_DROP_COLLECTION = 2,
    VD_MUT_ADD_PINDEX = 3,
    VD_MUT_UPSERT = 4,
    VD_MUT_DELETE_IDS = 5,
    VD_MUT_DELETE_FILTER = 6,
    VD_MUT_FEED_STATE = 7,
    VD_MUT_SET_DEFAULTS = 8,
    VD_MUT_EDIT_PAYLOAD = 9,
    VD_MUT_DROP_PINDEX = 10,
} vd_mutation_type;

typedef struct vd_mutation {
    vd_mutation_type type;
    const char *collection; /* name */
    uint64_t incarnation;   /* of the collection (its create LSN); not for CREATE */
    const vd_collection_config *cfg; /* CREATE */
    const char *field;               /* ADD_PINDEX, DROP_PINDEX */
    vd_pindex_type pindex_type;      /* ADD_PINDEX */
    vd_point_in *points;             /* UPSERT: payloads are taken when applied */
    size_t n_points;
    uint32_t dim;
    const vd_point_id *ids; /* DELETE_IDS; EDIT_PAYLOAD by ids (no filter) */
    size_t n_ids;
    const vd_filter *filter;   /* DELETE_FILTER; EDIT_PAYLOAD by filter */
    const char *filter_json;   /* ... the filter as JSON text (what is logged) */
    const vd_payload_edit *edit; /* EDIT_PAYLOAD */
    const vd_feed_state *feed; /* FEED_STATE (collection = the feed's name) */
    const vd_search_defaults *defaults; /* SET_DEFAULTS: the values ... */
    unsigned defaults_mask;             /* ... that VD_SET_* names */
} vd_mutation;

/* What applying a data mutation did (the API reply counts). */
typedef struct vd_mutation_outcome {
    vd_upsert_counts counts;
    size_t deleted;
    size_t edited; /* EDIT_PAYLOAD: points whose payload it changed */
    bool skipped; /* the collection (this incarnation) is gone */
} vd_mutation_outcome;

/* Appends m's record body to out (check out->failed for ENOMEM). */
void vd_mutation_encode(const vd_mutation *m, vd_strbuf *out);

/* A mutation decoded from a record body, with the storage it owns. */
typedef struct vd_mutation_decoded {
    vd_mutation m;
    char name[VD_NAME_MAX_LEN + 1];
    char *field;
    vd_collection_config cfg;
    vd_point_in *points;
    float *vectors;
    vd_point_id *ids; /* string ids borrow from the record body */
    vd_payload_edit edit;
    cJSON *edit_arg;
    char *edit_key;
    cJSON *filter_doc;
    vd_filter *filter;
    char *filter_json;
    vd_feed_state feed;
    vd_search_defaults defaults;
} vd_mutation_decoded;

/* Decodes a record body of type; VD_E_INVALID_REQUEST with em naming what is
 * wrong if the bytes do not form a mutation. The body must outlive d. */
int vd_mutation_decode(uint8_t type, const uint8_t *body, size_t len, vd_mutation_decoded *d,
                       vd_errmsg *em);
void vd_mutation_decoded_free(vd_mutation_decoded *d);

/* Applies a create / drop / add-index / set-defaults / feed-state mutation logged at lsn. With replay, a
 * change the loaded snapshots already hold is not an error. */
int vd_mutation_apply_ddl(vd_database *db, const vd_mutation *m, uint64_t lsn, bool replay,
                          vd_errmsg *em);

/* Applies a data mutation to its collection (c, or looked up by name and
 * incarnation if NULL): the whole write, index and visibility included. */
int vd_mutation_apply_data(vd_database *db, vd_collection *c, const vd_mutation *m, uint64_t lsn,
                           vd_mutation_outcome *out);

/* The ordered part of a data mutation (see vd_collection_upsert_stage);
 * *staged is set for upserts and must go to vd_mutation_finish. */
int vd_mutation_stage(vd_collection *c, const vd_mutation *m, uint64_t lsn,
                      vd_mutation_outcome *out, vd_collection_staged **staged);
int vd_mutation_finish(vd_collection *c, vd_collection_staged *staged);

bool vd_mutation_is_ddl(vd_mutation_type t);

#endif

/*
 * payload_edit.h — changing stored payloads in place: the four edits of the
 * payload API (set keys, replace all, unset keys, clear). An edit is a value:
 * it is logged in the WAL (write/mutation.c) and applied to each point it
 * selects, in log order, under the shard's write lock (db/shard_write.c), so
 * an edit never loses a concurrent write and replays to the same result.
 */
#ifndef VD_PAYLOAD_EDIT_H
#define VD_PAYLOAD_EDIT_H

#include <cjson/cJSON.h>

/* Values are part of the WAL format (write/mutation.c). */
typedef enum vd_payload_op {
    VD_PAYLOAD_SET = 1,     /* arg's members replace or join the payload's (at key, if given) */
    VD_PAYLOAD_REPLACE = 2, /* arg becomes the payload (or the member at key) */
    VD_PAYLOAD_UNSET = 3,   /* arg is an array of keys ("a.b" nests) to remove */
    VD_PAYLOAD_CLEAR = 4,   /* the point keeps no payload */
} vd_payload_op;

#define VD_PAYLOAD_KEY_MAX 256 /* bytes of a key path in an edit */

typedef struct vd_payload_edit {
    vd_payload_op op;
    const cJSON *arg; /* SET, REPLACE: an object; UNSET: an array of key strings */
    const char *key;  /* SET: the object to merge into, REPLACE: the member to replace, as a
                       * dotted path ("a.b"); NULL = the whole payload */
} vd_payload_edit;

/* The payload after edit e of old (borrowed, may be NULL): a new tree in
 * *out, or NULL for no payload. 0 or -ENOMEM. */
int vd_payload_edit_apply(const cJSON *old, const vd_payload_edit *e, cJSON **out);

/* Name of op ("set", "replace", "unset", "clear"), or NULL. */
const char *vd_payload_op_name(vd_payload_op op);

#endif

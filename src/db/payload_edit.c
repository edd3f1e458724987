/* payload_edit.c — see payload_edit.h. */
#include "db/payload_edit.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "db/payload.h"

const char *vd_payload_op_name(vd_payload_op op)
{
    switch (op) {
    case VD_PAYLOAD_SET:
        return "set";
    case VD_PAYLOAD_REPLACE:
        return "replace";
    case VD_PAYLOAD_UNSET:
        return "unset";
    case VD_PAYLOAD_CLEAR:
        return "clear";
    }
    return NULL;
}

/* The object at path inside root, made on the way: a missing part, or one
 * that is not an object, becomes an empty object. NULL out of memory. */
static cJSON *object_at(cJSON *root, const vd_key_path *path)
{
    cJSON *cur = root;
    for (size_t i = 0; i < path->n_parts; i++) {
        cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, path->parts[i]);
        if (!cJSON_IsObject(next)) {
            cJSON *fresh = cJSON_CreateObject();
            if (!fresh)
                return NULL;
            if (next ? !cJSON_ReplaceItemInObjectCaseSensitive(cur, path->parts[i], fresh)
                     : !cJSON_AddItemToObject(cur, path->parts[i], fresh)) {
                cJSON_Delete(fresh);
                return NULL;
            }
            next = fresh;
        }
        cur = next;
    }
    return cur;
}

/* Merges the members of src into dst (copies; a member of the same name is replaced). */
static bool merge(cJSON *dst, const cJSON *src)
{
    for (const cJSON *m = src->child; m; m = m->next) {
        cJSON *copy = cJSON_Duplicate(m, true);
        if (!copy)
            return false;
        cJSON *had = cJSON_GetObjectItemCaseSensitive(dst, m->string);
        if (had ? !cJSON_ReplaceItemViaPointer(dst, had, copy) : !cJSON_AddItemToObject(dst, m->string, copy)) {
            cJSON_Delete(copy);
            return false;
        }
    }
    return true;
}

/* Removes the member at path, if every part of the way is an object. */
static void remove_at(cJSON *root, const vd_key_path *path)
{
    cJSON *cur = root;
    for (size_t i = 0; cur && i + 1 < path->n_parts; i++) {
        cur = cJSON_GetObjectItemCaseSensitive(cur, path->parts[i]);
        if (!cJSON_IsObject(cur))
            return;
    }
    if (cur)
        cJSON_DeleteItemFromObjectCaseSensitive(cur, path->parts[path->n_parts - 1]);
}

/* Applies SET, UNSET or REPLACE at a key to root (a copy being built).
 * false out of memory. */
static bool edit_copy(cJSON *root, const vd_payload_edit *e)
{
    if (e->op == VD_PAYLOAD_UNSET) {
        for (const cJSON *k = e->arg ? e->arg->child : NULL; k; k = k->next) {
            vd_key_path path;
            int rc = cJSON_IsString(k) ? vd_key_path_parse(&path, k->valuestring) : -1;
            if (rc == -ENOMEM)
                return false;
            if (rc == 0) {
                remove_at(root, &path);
                vd_key_path_free(&path);
            }
        }
        return true;
    }
    vd_key_path path = {0};
    if (e->key && e->key[0] && vd_key_path_parse(&path, e->key) == -ENOMEM)
        return false;
    bool ok;
    if (e->op == VD_PAYLOAD_REPLACE) { /* the object at key becomes arg */
        char *last = path.parts[--path.n_parts];
        cJSON *parent = object_at(root, &path);
        cJSON *copy = parent ? cJSON_Duplicate(e->arg, true) : NULL;
        ok = copy && (cJSON_GetObjectItemCaseSensitive(parent, last)
                          ? cJSON_ReplaceItemInObjectCaseSensitive(parent, last, copy)
                          : cJSON_AddItemToObject(parent, last, copy));
        if (copy && !ok)
            cJSON_Delete(copy);
        path.parts[path.n_parts++] = last;
    } else {
        cJSON *target = object_at(root, &path);
        ok = target && merge(target, e->arg);
    }
    vd_key_path_free(&path);
    return ok;
}

int vd_payload_edit_apply(const cJSON *old, const vd_payload_edit *e, cJSON **out)
{
    *out = NULL;
    switch (e->op) {
    case VD_PAYLOAD_CLEAR:
        return 0;
    case VD_PAYLOAD_REPLACE:
        if (e->key && e->key[0])
            break; /* the object at key is replaced: below */
        return (*out = cJSON_Duplicate(e->arg, true)) ? 0 : -ENOMEM;
    case VD_PAYLOAD_UNSET:
        if (!old)
            return 0;
        break;
    case VD_PAYLOAD_SET:
        break;
    default:
        return -EINVAL;
    }
    cJSON *copy = old ? cJSON_Duplicate(old, true) : cJSON_CreateObject();
    if (!copy || !edit_copy(copy, e)) {
        cJSON_Delete(copy);
        return -ENOMEM;
    }
    *out = copy;
    return 0;
}

/* Payload edits: each op on present, missing and odd payloads, and the edit
 * logged in a WAL record decodes to the same edit. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "db/payload_edit.h"
#include "write/mutation.h"

/* The payload after op with arg (JSON text or NULL) and key on old (JSON text or NULL), as text ("null" if none). */
static char *edited(const char *old, vd_payload_op op, const char *arg, const char *key)
{
    cJSON *o = old ? cJSON_Parse(old) : NULL, *a = arg ? cJSON_Parse(arg) : NULL;
    vd_payload_edit e = {.op = op, .arg = a, .key = key};
    cJSON *out = NULL;
    cr_assert_eq(vd_payload_edit_apply(o, &e, &out), 0);
    char *text = out ? cJSON_PrintUnformatted(out) : strdup("null");
    cJSON_Delete(o);
    cJSON_Delete(a);
    cJSON_Delete(out);
    return text;
}

static void expect(const char *old, vd_payload_op op, const char *arg, const char *key, const char *want)
{
    char *got = edited(old, op, arg, key);
    cr_assert_str_eq(got, want, "%s %s %s on %s", vd_payload_op_name(op), arg ? arg : "", key ? key : "",
                     old ? old : "null");
    free(got);
}

Test(payload_edit, set_merges_top_level_keys)
{
    expect("{\"a\":1,\"b\":2}", VD_PAYLOAD_SET, "{\"b\":3,\"c\":[1]}", NULL, "{\"a\":1,\"b\":3,\"c\":[1]}");
    expect(NULL, VD_PAYLOAD_SET, "{\"x\":1}", NULL, "{\"x\":1}");
    expect("{\"a\":1}", VD_PAYLOAD_SET, "{}", NULL, "{\"a\":1}");
}

Test(payload_edit, set_at_a_key_makes_the_objects_on_the_way)
{
    expect("{\"m\":{\"a\":1}}", VD_PAYLOAD_SET, "{\"b\":2}", "m", "{\"m\":{\"a\":1,\"b\":2}}");
    expect("{\"m\":5}", VD_PAYLOAD_SET, "{\"b\":2}", "m.n", "{\"m\":{\"n\":{\"b\":2}}}");
    expect(NULL, VD_PAYLOAD_SET, "{\"b\":2}", "x.y", "{\"x\":{\"y\":{\"b\":2}}}");
}

Test(payload_edit, replace_unset_clear)
{
    expect("{\"a\":1}", VD_PAYLOAD_REPLACE, "{\"z\":true}", NULL, "{\"z\":true}");
    expect("{\"a\":1,\"m\":{\"b\":2,\"c\":3}}", VD_PAYLOAD_UNSET, "[\"a\",\"m.c\",\"no\",\"a.b.c\"]", NULL,
           "{\"m\":{\"b\":2}}");
    expect("{\"a\":1}", VD_PAYLOAD_UNSET, "[\"a\"]", NULL, "{}");
    expect(NULL, VD_PAYLOAD_UNSET, "[\"a\"]", NULL, "null");
    expect("{\"a\":1}", VD_PAYLOAD_CLEAR, NULL, NULL, "null");
    expect("{\"a\":1,\"m\":{\"b\":2,\"c\":3}}", VD_PAYLOAD_REPLACE, "{\"z\":1}", "m",
           "{\"a\":1,\"m\":{\"z\":1}}");
    expect("{\"a\":1}", VD_PAYLOAD_REPLACE, "{\"z\":1}", "x.y", "{\"a\":1,\"x\":{\"y\":{\"z\":1}}}");
}

Test(payload_edit, a_logged_edit_decodes_to_the_same_edit)
{
    cJSON *arg = cJSON_Parse("{\"k\":\"v\"}");
    vd_payload_edit e = {.op = VD_PAYLOAD_SET, .arg = arg, .key = "a.b"};
    vd_point_id ids[2] = {{.kind = VD_ID_INT, .num = 7}, {.kind = VD_ID_STR, .str = "x", .len = 1}};
    vd_mutation m = {.type = VD_MUT_EDIT_PAYLOAD, .collection = "c", .incarnation = 9, .edit = &e, .ids = ids,
                     .n_ids = 2};
    vd_strbuf b = {0};
    vd_mutation_encode(&m, &b);
    cr_assert(!b.failed);
    vd_mutation_decoded d;
    vd_errmsg em = {{0}};
    cr_assert_eq(vd_mutation_decode(VD_MUT_EDIT_PAYLOAD, (const uint8_t *)b.data, b.len, &d, &em), 0, "%s", em.text);
    cr_assert_eq(d.m.edit->op, VD_PAYLOAD_SET);
    cr_assert_str_eq(d.m.edit->key, "a.b");
    cr_assert(cJSON_Compare(d.m.edit->arg, arg, true));
    cr_assert_eq(d.m.n_ids, 2);
    cr_assert_eq(d.m.ids[0].num, 7);
    cr_assert_eq(d.m.ids[1].len, 1);
    vd_mutation_decoded_free(&d);
    /* Every cut of the body is refused, never misread. */
    for (size_t cut = 0; cut < b.len; cut++) {
        int rc = vd_mutation_decode(VD_MUT_EDIT_PAYLOAD, (const uint8_t *)b.data, cut, &d, &em);
        cr_assert_neq(rc, 0, "a body cut at %zu decoded", cut);
        vd_mutation_decoded_free(&d);
    }
    vd_strbuf_free(&b);
    cJSON_Delete(arg);
}

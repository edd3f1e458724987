/* The body scan (server/json_scan.h): which vectors it lifts, that the
 * lifted floats are strtof's (correctly rounded) on random and edge inputs,
 * that what it leaves alone still parses as before, that no client string
 * can pass for a placeholder, and what it counts. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/json_scan.h"
#include "server/json_util.h"

typedef struct scanned {
    char *text;
    cJSON *doc;
    vd_json_vectors v;
    vd_json_scan_stats st;
    int rc;
    vd_errmsg em;
} scanned;

static scanned scan(const char *body, size_t max_per_array)
{
    scanned s = {0};
    size_t len = strlen(body);
    s.text = malloc(len + 1);
    memcpy(s.text, body, len + 1);
    s.v.max_per_array = max_per_array;
    s.rc = vd_json_scan(s.text, len, &s.v, &s.st, &s.em);
    cr_assert_eq(strlen(s.text), len, "the scan keeps the length");
    if (!s.rc)
        s.doc = cJSON_Parse(s.text);
    return s;
}

static void done(scanned *s)
{
    cJSON_Delete(s->doc);
    vd_json_vectors_free(&s->v);
    free(s->text);
}

static const cJSON *at(const cJSON *doc, const char *a, int i, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(doc, a);
    if (i >= 0)
        x = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(x, i), b);
    return x;
}

/* Each body scans without error, nothing lifted, its text as sent. */
static void assert_left_alone(const char *const *left, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        scanned s = scan(left[i], 0);
        cr_assert_eq(s.rc, 0);
        cr_assert_eq(s.v.n, 0, "%s was lifted", left[i]);
        cr_assert_str_eq(s.text, left[i], "the text of what is left stays as sent");
        done(&s);
    }
}

Test(json_scan, lifts_top_level_and_per_entry_vectors_only)
{
    scanned s = scan("{\"points\":[{\"id\":1,\"vector\":[1.5, -2e-3,0.1],"
                     "\"payload\":{\"vector\":[7,8,9,10,11]}},{\"id\":2,\"vector\":[4,5,6,7]}],"
                     "\"vector\":[0.25,0.5,0.75]}",
                     0);
    cr_assert_eq(s.rc, 0, "%s", s.em.text);
    cr_assert_not_null(s.doc);
    cr_assert_eq(s.v.n, 3);
    const float *f;
    size_t n;
    cr_assert(vd_json_lifted(&s.v, at(s.doc, "points", 0, "vector"), &f, &n));
    cr_assert_eq(n, 3);
    cr_assert(f[0] == 1.5f && f[1] == strtof("-2e-3", NULL) && f[2] == strtof("0.1", NULL));
    cr_assert(vd_json_lifted(&s.v, at(s.doc, "points", 1, "vector"), &f, &n) && n == 4 && f[3] == 7);
    cr_assert(vd_json_lifted(&s.v, at(s.doc, "vector", -1, NULL), &f, &n) && n == 3 && f[2] == 0.75f);
    /* A payload's "vector" is the client's data: left as it was. */
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(at(s.doc, "points", -1, NULL), 0),
                                         "payload"),
        "vector");
    cr_assert(cJSON_IsArray(pv) && cJSON_GetArraySize(pv) == 5);
    done(&s);
}

Test(json_scan, leaves_what_is_not_all_finite_float32_numbers)
{
    static const char *const left[] = {
        "{\"vector\":[1,\"2\",3,4,5]}", "{\"vector\":[1,2,null,4]}", "{\"vector\":[1e39,1,1,1]}",
        "{\"vector\":[[1,2],[3,4]]}",   "{\"vector\":[1]}",          "{\"vector\":[]}",
        "{\"vector\":[01,2,3,4]}",      "{\"vector\":[1.,2,3,4]}",   "{\"vector\":[+1,2,3,4]}",
        "{\"vector\":[NaN,2,3,4]}",     "{\"vector\":[1,2,3,4,]}",   "{\"a\":{\"vector\":[1,2,3,4]}}",
    };
    assert_left_alone(left, sizeof left / sizeof *left);
}

Test(json_scan, invalid_json_stays_invalid)
{
    static const char *const bad[] = {"{\"vector\":[1,2,3,4]", "{\"vector\":[1,2,3,4]]}",
                                      "{\"vector\" [1,2,3,4]}", "[\"vector\",[1,2,3,4]]x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        scanned s = scan(bad[i], 0);
        cr_assert_eq(s.rc, 0);
        const char *end;
        cJSON *d = cJSON_ParseWithLengthOpts(s.text, strlen(s.text) + 1, &end, 1);
        cr_assert_null(d, "%s became valid JSON: %s", bad[i], s.text);
        done(&s);
    }
}

Test(json_scan, a_client_string_never_passes_for_a_placeholder)
{
    scanned s = scan("{\"vector\":\"\xff" "0\"}", 0);
    cr_assert_eq(s.rc, VD_E_MALFORMED_JSON, "0xFF is never UTF-8: refused before anyone reads it");
    done(&s);
    /* Without lifted arrays, nothing is lifted, whatever the string. */
    cJSON *str = cJSON_CreateString("\xff" "0");
    const float *f;
    size_t n;
    vd_json_vectors none = {0};
    cr_assert_not(vd_json_lifted(&none, str, &f, &n));
    cr_assert_not(vd_json_lifted(NULL, str, &f, &n));
    cJSON_Delete(str);
}

Test(json_scan, a_vector_longer_than_any_collection_takes_is_refused_naming_it)
{
    char body[4096];
    int n = snprintf(body, sizeof body, "{\"searches\":[{\"k\":1},{\"vector\":[");
    for (int i = 0; i < 9; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%s0.5", i ? "," : "");
    snprintf(body + n, sizeof body - (size_t)n, "]}]}");
    scanned s = scan(body, 8);
    cr_assert_eq(s.rc, VD_E_DIMENSION_MISMATCH);
    cr_assert(strstr(s.em.text, "searches[1].vector has more than 8 values"), "%s", s.em.text);
    done(&s);
    s = scan(body, 9);
    cr_assert_eq(s.rc, 0);
    cr_assert_eq(s.v.n, 1);
    done(&s);
}

Test(json_scan, counts_the_nodes_cjson_will_make)
{
    vd_json_scan_stats st;
    vd_errmsg em;
    char t1[] = "[0,0,0]";
    cr_assert_eq(vd_json_scan(t1, strlen(t1), NULL, &st, &em), 0);
    cr_assert_eq(st.values, 4);
    char t2[] = "{\"a\":true,\"b\":[null,-1.5e3,\"x\"],\"c\":{}}";
    cr_assert_eq(vd_json_scan(t2, strlen(t2), NULL, &st, &em), 0);
    cr_assert_eq(st.values, 7); /* root, true, array, null, -1.5e3, "x", {} */
    cr_assert_eq(st.strings, 4); /* keys a, b, c and "x" */
    /* A lifted vector is one node. */
    vd_json_vectors v = {0};
    char t3[] = "{\"vector\":[1,2,3,4,5,6]}";
    cr_assert_eq(vd_json_scan(t3, strlen(t3), &v, &st, &em), 0);
    cr_assert_eq(st.values, 2);
    cr_assert_gt(vd_json_scan_cost(&st, strlen(t3), &v), strlen(t3));
    vd_json_vectors_free(&v);
}

/* A random decimal in JSON's grammar: 1..20 significant digits, a fraction
 * or not, an exponent or not, reaching float32's subnormals and overflow. */
static int random_number(char *out, size_t cap, unsigned *seed)
{
    int n = 0;
    if (rand_r(seed) & 1)
        out[n++] = '-';
    int digits = 1 + rand_r(seed) % 20;
    int point = rand_r(seed) % (digits + 1);
    out[n++] = point == 0 ? '0' : (char)('1' + rand_r(seed) % 9);
    for (int i = 1; i < digits; i++) {
        if (i == point)
            out[n++] = '.';
        out[n++] = (char)('0' + rand_r(seed) % 10);
    }
    if (point == 0 && digits > 1) {
        memmove(out + n - digits + 2, out + n - digits + 1, (size_t)digits - 1);
        out[n - digits + 1] = '.';
        n++;
    }
    if (rand_r(seed) % 3 == 0)
        n += snprintf(out + n, cap - (size_t)n, "e%d", (int)(rand_r(seed) % 90) - 55);
    out[n] = 0;
    return n;
}

Test(json_scan, lifted_values_are_correctly_rounded_like_strtof)
{
    static const char *const edges[] = {
        "0",          "-0",          "0.0",        "1e-45",        "1.4e-45",     "7e-46",
        "1e-46",      "1.17549435e-38", "1.1754942e-38", "3.4028234e38", "3.40282356e38",
        "16777217",   "16777219",    "0.1",        "0.30000001",   "1.00000005960464477539062", /* halfway */
        "1.000000059604644775390625000001", "9007199254740993", "123456789012345678901234567890",
        "0.000000000000000000000000000000000000000000001401298464324817",
        /* Near halfway points between floats, in few digits: the fast path's
         * double lands on the halfway point and must leave it to strtof. */
        "16777217.000000001", "16777216.999999999", "16777217", "-16777219", "1.00000005960464478",
        "1.0000000596046447", "0.12345678", "-0.0123456789012345678", "1e22", "1e-22", "9007199254740992e22",
        "123e-25", "0.0000000000000000000001234", "-0e5", "1E+2", "5e-0",
        /* 16 digits whose nearest double is a halfway point between floats
         * (found by an exact search): (float)strtod would round them wrongly. */
        "1.000000536441803", "1000001847743988e-15", "-1.000002682209015", "1.00000292062759400",
        "100000661611557e-14",
    };
    char body[1 << 16], num[64];
    unsigned seed = 12345;
    for (int round = 0; round < 400; round++) {
        int n = snprintf(body, sizeof body, "{\"vector\":[");
        char nums[600][64];
        int count = 0;
        if (round == 0)
            for (size_t i = 0; i < sizeof edges / sizeof *edges; i++)
                snprintf(nums[count++], 64, "%s", edges[i]);
        while (count < 500) {
            if (round % 2) /* what embeddings look like: 0.0xxxxxxx with 6 to 10 digits */
                snprintf(num, sizeof num, "%s0.%0*u", rand_r(&seed) & 1 ? "-" : "",
                         6 + (int)(rand_r(&seed) % 5), (unsigned)rand_r(&seed) % 1000000000u);
            else
                random_number(num, sizeof num, &seed);
            if (!isfinite(strtof(num, NULL)))
                continue; /* such an array is left for cJSON: tested above */
            snprintf(nums[count++], 64, "%s", num);
        }
        for (int i = 0; i < count; i++)
            n += snprintf(body + n, sizeof body - (size_t)n, "%s%s", i ? "," : "", nums[i]);
        snprintf(body + n, sizeof body - (size_t)n, "]}");
        scanned s = scan(body, 0);
        cr_assert_eq(s.rc, 0);
        cr_assert_eq(s.v.n, 1, "round %d not lifted", round);
        const float *f;
        size_t got;
        cr_assert(vd_json_lifted(&s.v, at(s.doc, "vector", -1, NULL), &f, &got));
        cr_assert_eq(got, (size_t)count);
        for (int i = 0; i < count; i++) {
            float want = strtof(nums[i], NULL);
            cr_assert(memcmp(&f[i], &want, 4) == 0, "%s: lifted %a, strtof %a", nums[i], f[i], want);
        }
        done(&s);
    }
}

/* "vector_b64" strings are decoded by the scan into the same lifted store,
 * bit for bit the floats the client encoded, and the handler's field reader
 * takes them from there; what is not strict base64 of whole finite float32
 * values stays a string for the handler's usual errors. */
Test(json_scan, lifts_base64_vectors_bit_for_bit)
{
    /* 1.5, -0.0, the smallest subnormal, FLT_MAX: 16 bytes little-endian */
    const char *body = "{\"points\":[{\"id\":1,\"vector_b64\":\"AADAPwAAAIABAAAA//9/fw==\","
                       "\"payload\":{\"vector_b64\":\"AADAPw==\"}}],"
                       "\"vector_b64\":\"AACAPw==\"}";
    scanned s = scan(body, 0);
    cr_assert_eq(s.rc, 0, "%s", s.em.text);
    cr_assert_not_null(s.doc);
    cr_assert_eq(s.v.n, 2, "the payload's string is the client's data");
    const float *f;
    size_t n;
    cr_assert(vd_json_lifted(&s.v, at(s.doc, "points", 0, "vector_b64"), &f, &n));
    cr_assert_eq(n, 4);
    uint32_t bits[4];
    memcpy(bits, f, sizeof bits);
    cr_assert(bits[0] == 0x3fc00000u && bits[1] == 0x80000000u && bits[2] == 1u &&
              bits[3] == 0x7f7fffffu);
    cr_assert(vd_json_lifted(&s.v, at(s.doc, "vector_b64", -1, NULL), &f, &n) && n == 1 &&
              f[0] == 1.0f);
    float out[4];
    vd_errmsg em = {{0}};
    cr_assert_eq(vd_json_vector_field(cJSON_GetArrayItem(at(s.doc, "points", -1, NULL), 0),
                                      "points[0]", "c", 4, &s.v, out, &em), 0, "%s", em.text);
    cr_assert(out[0] == 1.5f && signbit(out[1]) && out[3] == 0x1.fffffep127f);
    cr_assert_eq(vd_json_vector_field(cJSON_GetArrayItem(at(s.doc, "points", -1, NULL), 0),
                                      "points[0]", "c", 3, &s.v, out, &em),
                 VD_E_DIMENSION_MISMATCH);
    cr_assert(strstr(em.text, "points[0].vector_b64 holds 16 bytes (4 float32 values)"), "%s",
              em.text);
    done(&s);
}

Test(json_scan, leaves_base64_strings_that_are_not_whole_finite_floats)
{
    static const char *const left[] = {
        "{\"vector_b64\":\"AADAPw\"}",       /* not a multiple of 4 characters */
        "{\"vector_b64\":\"AADA\"}",         /* 3 bytes: no whole float */
        "{\"vector_b64\":\"AADA*w==\"}",     /* outside the alphabet */
        "{\"vector_b64\":\"AAD\\u0041Pw==\"}", /* an escape */
        "{\"vector_b64\":\"AACAfw==\"}",     /* +Inf */
        "{\"vector_b64\":\"AADAfw==\"}",     /* NaN */
        "{\"vector_b64\":\"\"}",
        "{\"vector_b64\":[1,2,3,4]}",
        "{\"a\":{\"vector_b64\":\"AACAPw==\"}}",
    };
    assert_left_alone(left, sizeof left / sizeof *left);
    /* The handler then says what is wrong, as before. */
    scanned s = scan("{\"vector_b64\":\"AACAfw==\"}", 0);
    float out[1];
    vd_errmsg em = {{0}};
    cr_assert_eq(vd_json_vector_field(s.doc, "", "c", 1, &s.v, out, &em), VD_E_INVALID_VECTOR);
    cr_assert(strstr(em.text, "NaN or infinite"), "%s", em.text);
    done(&s);
    s = scan("{\"vector_b64\":\"AADA*w==\"}", 0);
    cr_assert_eq(vd_json_vector_field(s.doc, "", "c", 1, &s.v, out, &em), VD_E_INVALID_VECTOR);
    cr_assert(strstr(em.text, "not valid base64"), "%s", em.text);
    done(&s);
}

Test(json_scan, a_base64_vector_longer_than_any_collection_takes_is_refused)
{
    scanned s = scan("{\"searches\":[{\"vector_b64\":\"AACAPwAAgD8AAIA/\"}]}", 2);
    cr_assert_eq(s.rc, VD_E_DIMENSION_MISMATCH);
    cr_assert(strstr(s.em.text, "searches[0].vector_b64 has more than 2 values"), "%s", s.em.text);
    done(&s);
}

/* The padding after each placeholder is cut out before cJSON reads the text
 * (it skips white space a byte at a time); every other byte keeps its order,
 * and its offset maps back to the body as sent (for error messages). */
Test(json_scan, compaction_cuts_the_padding_and_maps_offsets_back)
{
    const char *body = "{\"points\":[{\"vector\":[1.25, 2.5, 3.75, 4.5],\"id\":1},"
                       "{\"vector\":[0.5,0.25,0.125,1],\"id\":2}],\"k\":  x}";
    scanned s = scan(body, 0);
    cr_assert_eq(s.rc, 0);
    cr_assert_eq(s.v.n, 2);
    size_t len = vd_json_compact(s.text, strlen(body), &s.v);
    cr_assert_str_eq(s.text, "{\"points\":[{\"vector\":\"\xff" "0\",\"id\":1},{\"vector\":\"\xff"
                             "1\",\"id\":2}],\"k\":  x}");
    cr_assert_eq(len, strlen(s.text));
    size_t checked = 0;
    for (size_t at = 0; at < len; at++) {
        if (s.text[at] == '"' && (unsigned char)s.text[at + 1] == 0xFF) { /* a placeholder */
            at = (size_t)(strchr(s.text + at + 1, '"') - s.text);
            continue;
        }
        size_t o = vd_json_original_offset(&s.v, at);
        cr_assert_lt(o, strlen(body));
        cr_assert_eq(s.text[at], body[o], "byte %zu of the compacted text is byte %zu as sent", at, o);
        checked++;
    }
    cr_assert_gt(checked, 40);
    cr_assert_eq(vd_json_original_offset(&s.v, (size_t)(strchr(s.text, 'x') - s.text)),
                 (size_t)(strchr(body, 'x') - body));
    cJSON *doc = cJSON_Parse(s.text);
    cr_assert_null(doc); /* still invalid: the x */
    done(&s);
    /* Nothing lifted: nothing moves. */
    s = scan("{\"vector\":[1,\"a\"]}", 0);
    cr_assert_eq(vd_json_compact(s.text, strlen(s.text), &s.v), strlen("{\"vector\":[1,\"a\"]}"));
    cr_assert_eq(vd_json_original_offset(&s.v, 5), 5);
    done(&s);
}

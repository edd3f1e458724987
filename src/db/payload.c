/* payload.c — see payload.h. */
#include "db/payload.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vd_key_path_parse(vd_key_path *kp, const char *key)
{
    *kp = (vd_key_path){0};
    size_t n = 1;
    for (const char *p = key; *p; p++)
        n += *p == '.';
    if (!*key)
        return -1;
    kp->parts = calloc(n, sizeof *kp->parts);
    if (!kp->parts)
        return -ENOMEM;
    const char *start = key;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(start, '.');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        if (len == 0) {
            vd_key_path_free(kp);
            return -1;
        }
        kp->parts[i] = strndup(start, len);
        if (!kp->parts[i]) {
            vd_key_path_free(kp);
            return -ENOMEM;
        }
        kp->n_parts++;
        start = end ? end + 1 : start + len;
    }
    return 0;
}

void vd_key_path_free(vd_key_path *kp)
{
    for (size_t i = 0; i < kp->n_parts; i++)
        free(kp->parts[i]);
    free(kp->parts);
    *kp = (vd_key_path){0};
}

const cJSON *vd_payload_get(const cJSON *payload, const vd_key_path *kp)
{
    const cJSON *cur = payload;
    for (size_t i = 0; cur && i < kp->n_parts; i++) {
        if (!cJSON_IsObject(cur))
            return NULL;
        cur = cJSON_GetObjectItemCaseSensitive(cur, kp->parts[i]);
    }
    return cur;
}

size_t vd_payload_bytes(const cJSON *item)
{
    size_t bytes = 0;
    for (; item; item = item->next) {
        bytes += sizeof(cJSON);
        if (item->string)
            bytes += strlen(item->string) + 1;
        if (item->valuestring)
            bytes += strlen(item->valuestring) + 1;
        if (item->child)
            bytes += vd_payload_bytes(item->child);
    }
    return bytes;
}

size_t vd_keyword_key(const cJSON *v, char *buf, size_t cap)
{
    int n = -1;
    if (cJSON_IsString(v)) {
        size_t len = strlen(v->valuestring);
        if (len + 3 > cap)
            return 0;
        buf[0] = 's';
        buf[1] = ':';
        memcpy(buf + 2, v->valuestring, len + 1);
        return len + 2;
    }
    if (cJSON_IsBool(v))
        n = snprintf(buf, cap, "b:%d", cJSON_IsTrue(v) ? 1 : 0);
    else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!(fabs(d) < 9007199254740992.0) || d != floor(d))
            return 0;
        n = snprintf(buf, cap, "i:%lld", (long long)d);
    }
    return (n > 0 && (size_t)n < cap) ? (size_t)n : 0;
}

bool vd_datetime_parse(const char *s, double *out)
{
    int y, mo, d, h = 0, mi = 0, n = 0;
    double sec = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    const char *p = s + 10;
    double tz = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        int m = 0;
        if (sscanf(p + 1, "%2d:%2d:%lf%n", &h, &mi, &sec, &m) != 3 || h > 23 || mi > 59 || sec < 0 || sec >= 61)
            return false;
        p += 1 + m;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int th, tm, k = 0;
            if (sscanf(p + 1, "%2d:%2d%n", &th, &tm, &k) != 2 || k != 5 || th > 23 || tm > 59)
                return false;
            tz = (*p == '+' ? 1 : -1) * (th * 3600.0 + tm * 60.0);
            p += 1 + k;
        }
    }
    if (*p)
        return false;
    /* days from the civil date (proleptic Gregorian) */
    int yy = y - (mo <= 2);
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    double days = (double)era * 146097 + doe - 719468;
    *out = days * 86400 + h * 3600.0 + mi * 60.0 + sec - tz;
    return true;
}

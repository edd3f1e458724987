/* log.c — see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The process-wide logging state: the minimum level printed and the format. */
static _Atomic int log_level = VD_LOG_INFO;
static _Atomic int log_format = VD_LOG_LOGFMT;
/* The request this thread serves, if any. */
static _Thread_local const char *thread_request_id;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void vd_log_set_level(vd_log_level level) { atomic_store(&log_level, (int)level); }
vd_log_level vd_log_get_level(void) { return (vd_log_level)atomic_load(&log_level); }
void vd_log_set_format(vd_log_format format) { atomic_store(&log_format, (int)format); }
void vd_log_request(const char *request_id) { thread_request_id = request_id; }

const char *vd_log_level_name(vd_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "unknown";
}

int vd_log_level_parse(const char *name, vd_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (vd_log_level)i;
            return 0;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *out = VD_LOG_WARN;
        return 0;
    }
    return -1;
}

int vd_log_format_parse(const char *name, vd_log_format *out)
{
    if (strcmp(name, "logfmt") == 0)
        *out = VD_LOG_LOGFMT;
    else if (strcmp(name, "json") == 0)
        *out = VD_LOG_JSON;
    else
        return -1;
    return 0;
}

/* A bounded line being built; appends past the end are dropped. */
typedef struct line {
    char buf[4096];
    size_t n;
} line;

static void put(line *l, const char *s, size_t len)
{
    size_t room = sizeof l->buf - 2 - l->n; /* 2: the newline, and a '}' */
    if (len > room)
        len = room;
    memcpy(l->buf + l->n, s, len);
    l->n += len;
}

static void put_json_string(line *l, const char *s, size_t len)
{
    put(l, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            int m = snprintf(esc, sizeof esc, "\\u%04x", c);
            put(l, esc, (size_t)m);
        } else {
            put(l, (const char *)&s[i], 1);
        }
    }
    put(l, "\"", 1);
}

/* Whether v is a JSON number as logfmt values write them: -?(0|[1-9]d*)(.d+)? */
static bool is_plain_number(const char *v, size_t len)
{
    size_t i = len && v[0] == '-' ? 1 : 0;
    if (i == len || len > 24)
        return false;
    if (v[i] == '0')
        i++;
    else if (v[i] >= '1' && v[i] <= '9')
        while (i < len && v[i] >= '0' && v[i] <= '9')
            i++;
    else
        return false;
    if (i < len && v[i] == '.') {
        size_t frac = ++i;
        while (i < len && v[i] >= '0' && v[i] <= '9')
            i++;
        if (i == frac)
            return false;
    }
    return i == len;
}

/* A bare logfmt value as JSON: a plain number stays a number, all else a string. */
static void put_json_value(line *l, const char *v, size_t len)
{
    if (is_plain_number(v, len))
        put(l, v, len);
    else
        put_json_string(l, v, len);
}

/* The key=value pairs of a logfmt text (values bare or "quoted"; a quoted one
 * ends at a quote followed by a space or the end) as JSON members. */
static void put_json_pairs(line *l, const char *s)
{
    while (*s) {
        while (*s == ' ')
            s++;
        const char *key = s;
        while (*s && *s != '=' && *s != ' ')
            s++;
        size_t klen = (size_t)(s - key);
        if (!klen)
            break;
        const char *val = "";
        size_t vlen = 0;
        bool quoted = false;
        if (*s == '=') {
            s++;
            if (*s == '"') {
                quoted = true;
                val = ++s;
                const char *end = s;
                while (*end && !(end[0] == '"' && (end[1] == ' ' || end[1] == 0)))
                    end++;
                vlen = (size_t)(end - val);
                s = *end ? end + 1 : end;
            } else {
                val = s;
                while (*s && *s != ' ')
                    s++;
                vlen = (size_t)(s - val);
            }
        }
        put(l, ",", 1);
        put_json_string(l, key, klen);
        put(l, ":", 1);
        if (quoted)
            put_json_string(l, val, vlen);
        else
            put_json_value(l, val, vlen);
    }
}

void vd_log(vd_log_level level, const char *msg, const char *fmt, ...)
{
    if ((int)level < atomic_load(&log_level))
        return;
    char pairs[2048] = "";
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pairs, sizeof pairs, fmt, ap);
        va_end(ap);
    }
    for (char *p = pairs; *p; p++) /* one line per entry, whatever a value holds */
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    const char *rid = thread_request_id;
    line l = {.n = 0};
    if (atomic_load(&log_format) == VD_LOG_JSON) {
        put(&l, "{\"ts\":\"", 7);
        put(&l, when, strlen(when));
        put(&l, "\",\"level\":\"", 11);
        put(&l, vd_log_level_name(level), strlen(vd_log_level_name(level)));
        put(&l, "\",\"msg\":", 8);
        put_json_string(&l, msg, strlen(msg));
        put_json_pairs(&l, pairs);
        if (rid) {
            put(&l, ",\"request_id\":", 14);
            put_json_string(&l, rid, strlen(rid));
        }
        l.buf[l.n++] = '}'; /* put keeps room for it */
    } else {
        char head[160];
        int m = snprintf(head, sizeof head, "ts=%s level=%s msg=\"", when, vd_log_level_name(level));
        put(&l, head, (size_t)m);
        put(&l, msg, strlen(msg));
        put(&l, "\"", 1);
        if (*pairs) {
            put(&l, " ", 1);
            put(&l, pairs, strlen(pairs));
        }
        if (rid) {
            put(&l, " request_id=", 12);
            put(&l, rid, strlen(rid));
        }
    }
    l.buf[l.n++] = '\n';
    ssize_t w = write(STDERR_FILENO, l.buf, l.n);
    (void)w;
}

/* log.c — see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The only process-wide logging state: the minimum level printed. */
static _Atomic int log_level = VD_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void vd_log_set_level(vd_log_level level) { atomic_store(&log_level, (int)level); }
vd_log_level vd_log_get_level(void) { return (vd_log_level)atomic_load(&log_level); }

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

void vd_log(vd_log_level level, const char *msg, const char *fmt, ...)
{
    if ((int)level < atomic_load(&log_level))
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, vd_log_level_name(level), msg);
    if (n < 0)
        return;
    if (fmt && *fmt && (size_t)n < sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

/*
 * log.h — structured one-line logs on stderr, logfmt by default:
 *   ts=2026-11-24T20:00:00.123Z level=info msg="listening" addr=127.0.0.1:6480
 * or one JSON object per line (log_format = json):
 *   {"ts":"2026-11-24T20:00:00.123Z","level":"info","msg":"listening","addr":"127.0.0.1:6480"}
 * The level and format are process-wide, set at start-up (the level again on
 * reload) through atomics; writing a line is one write(2), so lines never
 * interleave. A thread serving a request names it (vd_log_request): its lines
 * carry request_id until it stops.
 */
#ifndef VD_LOG_H
#define VD_LOG_H

typedef enum vd_log_level {
    VD_LOG_DEBUG = 0,
    VD_LOG_INFO = 1,
    VD_LOG_WARN = 2,
    VD_LOG_ERROR = 3,
} vd_log_level;

typedef enum vd_log_format {
    VD_LOG_LOGFMT = 0,
    VD_LOG_JSON = 1,
} vd_log_format;

void vd_log_set_level(vd_log_level level);
void vd_log_set_format(vd_log_format format);
int vd_log_format_parse(const char *name, vd_log_format *out);
/* The request the calling thread serves (NULL: none); the id is not copied. */
void vd_log_request(const char *request_id);
vd_log_level vd_log_get_level(void);
int vd_log_level_parse(const char *name, vd_log_level *out);
const char *vd_log_level_name(vd_log_level level);

/* msg is quoted; fmt adds further key=value pairs (the caller quotes values
 * that may hold spaces: key="%s"). Control characters are written as spaces,
 * so a value cannot start a line of its own. */
void vd_log(vd_log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define vd_log_debug(msg, ...) vd_log(VD_LOG_DEBUG, msg, __VA_ARGS__)
#define vd_log_info(msg, ...) vd_log(VD_LOG_INFO, msg, __VA_ARGS__)
#define vd_log_warn(msg, ...) vd_log(VD_LOG_WARN, msg, __VA_ARGS__)
#define vd_log_error(msg, ...) vd_log(VD_LOG_ERROR, msg, __VA_ARGS__)

#endif

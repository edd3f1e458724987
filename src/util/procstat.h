/* procstat.h — facts about this process read from /proc. */
#ifndef VD_PROCSTAT_H
#define VD_PROCSTAT_H

/* Resident set size in bytes (0 if /proc is unavailable). */
long vd_process_rss_bytes(void);

/* What Prometheus' standard process_* metrics report. Fields /proc cannot
 * give are -1. */
typedef struct vd_process_facts {
    double cpu_seconds;        /* user + system */
    double start_time_seconds; /* since 1970 */
    long resident_bytes, virtual_bytes;
    long open_fds, max_fds;
} vd_process_facts;
void vd_process_facts_get(vd_process_facts *out);

#endif

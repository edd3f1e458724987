/* procstat.h — facts about this process read from /proc. */
#ifndef VD_PROCSTAT_H
#define VD_PROCSTAT_H

/* Resident set size in bytes (0 if /proc is unavailable). */
long vd_process_rss_bytes(void);

#endif

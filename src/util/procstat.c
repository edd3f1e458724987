/* procstat.c — see procstat.h. */
#include "util/procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

long vd_process_rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* The boot time (btime of /proc/stat), seconds since 1970; -1 if unknown. */
static long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    char line[256];
    long btime = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %ld", &btime) == 1)
            break;
    if (f)
        fclose(f);
    return btime;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

void vd_process_facts_get(vd_process_facts *out)
{
    *out = (vd_process_facts){-1, -1, -1, -1, -1, -1};
    out->resident_bytes = vd_process_rss_bytes();
    out->open_fds = count_fds();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        out->max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
    /* /proc/self/stat: the name in parentheses may hold spaces; fields from
     * the last ')' on: state(3) … utime(14) stime(15) … starttime(22) vsize(23). */
    FILE *f = fopen("/proc/self/stat", "r");
    char buf[1024];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long utime, stime, vsize;
    unsigned long long start;
    long ticks = sysconf(_SC_CLK_TCK);
    if (p && ticks > 0 &&
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d %llu %lu",
               &utime, &stime, &start, &vsize) == 4) {
        out->cpu_seconds = (double)(utime + stime) / (double)ticks;
        out->virtual_bytes = (long)vsize;
        long boot = boot_time();
        if (boot >= 0)
            out->start_time_seconds = (double)boot + (double)start / (double)ticks;
    }
}

/* auth.c — see auth.h. */
#include "server/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define VD_KEY_MAX 512

struct vd_auth {
    pthread_rwlock_t lock; /* guards everything below (SIGHUP swaps them) */
    char admin[VD_KEY_MAX + 1], read[VD_KEY_MAX + 1];
    bool open_probes, open_metrics;
};

/* A key from a setting, else from the file a setting names (trimmed). */
static int load_key(char *out, const char *value, const char *file, const char *what, vd_errmsg *em)
{
    out[0] = 0;
    if (value[0]) {
        if (strlen(value) > VD_KEY_MAX)
            return vd_fail(em, VD_E_INVALID_REQUEST, "%s is longer than %d bytes", what, VD_KEY_MAX);
        snprintf(out, VD_KEY_MAX + 1, "%s", value);
        return 0;
    }
    if (!file[0])
        return 0;
    FILE *f = fopen(file, "r");
    if (!f)
        return vd_fail(em, -errno, "cannot read %s file '%s': %s", what, file, strerror(errno));
    size_t n = fread(out, 1, VD_KEY_MAX + 1, f);
    fclose(f);
    if (n > VD_KEY_MAX)
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s file '%s' is longer than %d bytes", what, file,
                       VD_KEY_MAX);
    out[n] = 0;
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = 0;
    if (!n)
        return vd_fail(em, VD_E_INVALID_REQUEST, "%s file '%s' is empty", what, file);
    return 0;
}

static int load(vd_auth *a, const vd_config *cfg, vd_errmsg *em)
{
    int rc = load_key(a->admin, cfg->api_key, cfg->api_key_file, "api_key", em);
    if (!rc)
        rc = load_key(a->read, cfg->read_api_key, cfg->read_api_key_file, "read_api_key", em);
    if (!rc && a->admin[0] && strcmp(a->admin, a->read) == 0)
        rc = vd_fail(em, VD_E_INVALID_REQUEST, "api_key and read_api_key must differ");
    a->open_probes = cfg->auth_open_probes != 0;
    a->open_metrics = cfg->auth_open_metrics != 0;
    return rc;
}

int vd_auth_create(vd_auth **out, const vd_config *cfg, vd_errmsg *em)
{
    vd_auth *a = calloc(1, sizeof *a);
    if (!a)
        return vd_fail(em, -ENOMEM, "out of memory");
    pthread_rwlock_init(&a->lock, NULL);
    int rc = load(a, cfg, em);
    if (rc) {
        vd_auth_destroy(a);
        return rc;
    }
    *out = a;
    return 0;
}

int vd_auth_reload(vd_auth *a, const vd_config *cfg, vd_errmsg *em)
{
    vd_auth fresh = {0};
    int rc = load(&fresh, cfg, em);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&a->lock);
    memcpy(a->admin, fresh.admin, sizeof a->admin);
    memcpy(a->read, fresh.read, sizeof a->read);
    a->open_probes = fresh.open_probes;
    a->open_metrics = fresh.open_metrics;
    pthread_rwlock_unlock(&a->lock);
    return 0;
}

void vd_auth_destroy(vd_auth *a)
{
    if (!a)
        return;
    pthread_rwlock_destroy(&a->lock);
    free(a);
}

bool vd_auth_enabled(vd_auth *a)
{
    pthread_rwlock_rdlock(&a->lock);
    bool on = a->admin[0] || a->read[0];
    pthread_rwlock_unlock(&a->lock);
    return on;
}

/* Equal, in time that depends on the lengths only (never on where they differ). */
static bool same_key(const char *given, const char *key)
{
    size_t lg = strlen(given), lk = strlen(key);
    if (!lk)
        return false;
    unsigned diff = (unsigned)(lg ^ lk);
    for (size_t i = 0; i < lk; i++)
        diff |= (unsigned char)key[i] ^ (unsigned char)(i < lg ? given[i] : 0);
    return diff == 0;
}

int vd_auth_check(vd_auth *a, vd_route r, const char *authorization, const char *api_key,
                  vd_errmsg *em)
{
    vd_access need = vd_routes[r].access;
    const char *given = api_key;
    if (authorization && strncasecmp(authorization, "Bearer ", 7) == 0)
        given = authorization + 7;
    pthread_rwlock_rdlock(&a->lock);
    int rc = 0;
    bool on = a->admin[0] || a->read[0];
    if (!on || (need == VD_ACCESS_PROBE && a->open_probes) ||
        (need == VD_ACCESS_METRICS && a->open_metrics))
        goto done;
    bool admin = given && same_key(given, a->admin);
    bool reader = given && same_key(given, a->read);
    if (!admin && !reader)
        rc = vd_fail(em, VD_E_UNAUTHORIZED,
                     given ? "the API key is not valid"
                           : "an API key is required: send 'Authorization: Bearer <key>' or 'api-key: <key>'");
    else if (!admin && need == VD_ACCESS_WRITE)
        rc = vd_fail(em, VD_E_FORBIDDEN, "the read-only API key cannot change data; use the admin key");
done:
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

/* error.c — tables behind include/vectord/error.h. */
#include "vectord/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct err_info {
    const char *code;
    int status;
    const char *message;
} err_info;

static const err_info err_table[] = {
#define VD_ERR_ROW(name, code, status, msg) {code, status, msg},
    VD_ERROR_MAP(VD_ERR_ROW)
#undef VD_ERR_ROW
};

static const err_info *lookup(int err)
{
    if (err > VD_E_BASE && err < VD_E_END)
        return &err_table[err - VD_E_BASE - 1];
    return NULL;
}

const char *vd_err_code(int err)
{
    const err_info *e = lookup(err);
    if (e)
        return e->code;
    if (err == -12) /* ENOMEM */
        return "out_of_memory";
    return "internal";
}

int vd_err_status(int err)
{
    const err_info *e = lookup(err);
    if (e)
        return e->status;
    if (err == -12)
        return 503;
    return 500;
}

const char *vd_err_message(int err)
{
    const err_info *e = lookup(err);
    if (e)
        return e->message;
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

int vd_fail(vd_errmsg *em, int err, const char *fmt, ...)
{
    if (em) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(em->text, sizeof em->text, fmt, ap);
        va_end(ap);
    }
    return err;
}

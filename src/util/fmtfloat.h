/*
 * fmtfloat.h — a float as JSON text, exactly as printf("%.9g", (double)f)
 * writes it (9 significant digits: enough for any float to read back the
 * same), without printf: answers that carry vectors print thousands of them.
 */
#ifndef VD_FMTFLOAT_H
#define VD_FMTFLOAT_H

#include <stddef.h>

/* Writes f's "%.9g" text and a NUL into out (at least VD_FMT_FLOAT_MAX
 * bytes); returns its length. */
#define VD_FMT_FLOAT_MAX 32
size_t vd_fmt_float(float f, char *out);

#endif

/*
 * fmtfloat.h — numbers of answers as JSON text, exactly as printf writes
 * them, without printf: a float as "%.9g" (9 significant digits: enough for
 * any float to read back the same; answers that carry vectors print
 * thousands), an integer as "%llu", a time in milliseconds as "%.15g" (each
 * search answer prints ids, versions and its time: 20-odd printf calls, 1-2%
 * of a search's server CPU at 384-d, perf).
 */
#ifndef VD_FMTFLOAT_H
#define VD_FMTFLOAT_H

#include <stddef.h>
#include <stdint.h>

/* Writes f's "%.9g" text and a NUL into out (at least VD_FMT_FLOAT_MAX
 * bytes); returns its length. */
#define VD_FMT_FLOAT_MAX 32
size_t vd_fmt_float(float f, char *out);

/* v as "%llu" and a NUL into out (at least 21 bytes); its length. */
size_t vd_fmt_u64(uint64_t v, char *out);
/* us microseconds as milliseconds, "%.15g" of us / 1e3 (up to three
 * decimals, trailing zeros cut), and a NUL into out (at least 32 bytes) for
 * us < 10^15; its length. */
size_t vd_fmt_millis(uint64_t us, char *out);

#endif

/* Calibration: the smallest rung meeting the target once enough samples are
 * in, the largest when none does, and a window that forgets old samples. */
#include <criterion/criterion.h>

#include "db/calibration.h"

/* A sample whose recall at rung r is recall[r] (k = 10). */
static void add(vd_calibration *c, const double *recall)
{
    uint32_t found[VD_CALIBRATION_RUNGS];
    for (int r = 0; r < VD_CALIBRATION_RUNGS; r++)
        found[r] = (uint32_t)(recall[r] * 10 + 0.5);
    vd_calibration_add(c, found, 10);
}

Test(calibration, smallest_rung_meeting_the_target)
{
    vd_calibration c;
    vd_calibration_init(&c, false);
    const double rising[VD_CALIBRATION_RUNGS] = {0.5, 0.7, 0.8, 0.9, 0.9, 1, 1, 1, 1, 1, 1, 1};
    vd_calibration_choice ch;
    for (int i = 0; i < VD_CALIBRATION_MIN_SAMPLES - 1; i++)
        add(&c, rising);
    vd_calibration_choose(&c, 0.9f, &ch);
    cr_assert_not(ch.chosen, "too few samples");
    add(&c, rising);
    vd_calibration_choose(&c, 0.9f, &ch);
    cr_assert(ch.chosen);
    cr_assert_eq(ch.value, 32); /* rungs 10 16 24 32 …: 0.9 first at the fourth */
    cr_assert_float_eq(ch.recall, 0.9, 1e-9);
    vd_calibration_choose(&c, 0.95f, &ch);
    cr_assert_eq(ch.value, 64);
    /* Never met: the largest rung. */
    vd_calibration_choose(&c, 0.999f, &ch);
    cr_assert_eq(ch.value, 64); /* 1.0 at 64 meets 0.999 */
    vd_calibration_destroy(&c);
}

Test(calibration, window_follows_the_data)
{
    vd_calibration c;
    vd_calibration_init(&c, true);
    const double easy[VD_CALIBRATION_RUNGS] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const double hard[VD_CALIBRATION_RUNGS] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.8, 0.8, 0.9, 0.9};
    for (int i = 0; i < VD_CALIBRATION_WINDOW; i++)
        add(&c, easy);
    vd_calibration_choice ch;
    vd_calibration_choose(&c, 0.95f, &ch);
    cr_assert_eq(ch.value, 1); /* IVF's ladder starts at one list */
    for (int i = 0; i < VD_CALIBRATION_WINDOW; i++)
        add(&c, hard);
    vd_calibration_choose(&c, 0.95f, &ch);
    cr_assert_eq(ch.value, 64, "none meets it: the largest");
    cr_assert_float_eq(ch.recall, 0.9, 1e-9, "the easy samples have left the window");
    cr_assert_eq(ch.samples, VD_CALIBRATION_WINDOW);
    vd_calibration_destroy(&c);
}

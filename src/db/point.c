/* point.c — see point.h. */
#include "db/point.h"

#include <stdlib.h>

void vd_point_out_free(vd_point_out *p)
{
    if (!p)
        return;
    free(p->id_buf);
    cJSON_Delete(p->payload);
    free(p->vector);
    *p = (vd_point_out){0};
}

/* routes.c — the route table, built from the list in routes.h. */
#include "server/routes.h"

#include "server/handlers.h"
#include "server/qdrant.h"

const vd_route_def vd_routes[VD_N_ROUTES] = {
#define VD_ROUTE_DEF(id, method, path, label, handler, access, flags)                             \
    [VD_ROUTE_##id] = {method, path, label, handler, VD_ACCESS_##access, flags},
    VD_ROUTES(VD_ROUTE_DEF)
#undef VD_ROUTE_DEF
    [VD_ROUTE_NONE] = {.label = "unmatched", .access = VD_ACCESS_WRITE},
};

/* handlers.h — the API handlers, one per route (the table: routes.h). */
#ifndef VD_HANDLERS_H
#define VD_HANDLERS_H

#include "server/api.h"

int vd_h_healthz(vd_call *call);
int vd_h_readyz(vd_call *call);
int vd_h_metrics(vd_call *call);
int vd_h_openapi(vd_call *call);
int vd_h_collections_list(vd_call *call);
int vd_h_collection_create(vd_call *call);
int vd_h_collection_info(vd_call *call);
int vd_h_collection_delete(vd_call *call);
int vd_h_collection_update(vd_call *call);
int vd_h_pindex_create(vd_call *call);
int vd_h_points_upsert(vd_call *call);
int vd_h_points_delete(vd_call *call);
int vd_h_point_get(vd_call *call);
int vd_h_search(vd_call *call);
int vd_h_search_batch(vd_call *call);
int vd_h_search_shadow(vd_call *call);
int vd_h_collection_snapshot(vd_call *call);
int vd_h_checkpoint(vd_call *call);
int vd_h_feed(vd_call *call);
int vd_h_feeds(vd_call *call);
int vd_h_feed_reconcile(vd_call *call);

#endif

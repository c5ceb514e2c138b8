/* fetch.h: the per-request state machine (internal). */
#ifndef VL_FETCH_H
#define VL_FETCH_H

#include "client.h"

/* The scheduler's callbacks (scheduler.h), with the client as ctx. */
int fetch_host_has_room(void *ctx, struct host *h);
void fetch_sched_start(void *ctx, struct sched_item *it);

#endif

/* fetch.h: the per-request state machine (internal). */
#ifndef VL_FETCH_H
#define VL_FETCH_H

#include "client.h"

/* Start fetches waiting in the client's queue while slots are free. */
void fetch_pump(vl_client *cl);

#endif

/*
 * scaledobjects.h — the admin API's ScaledObject endpoints
 * (scaledobjects.c). Private to src/api/.
 */
#ifndef WASMFN_API_SCALEDOBJECTS_H
#define WASMFN_API_SCALEDOBJECTS_H

#include <cjson/cJSON.h>

#include "api/internal.h"

/* POST /v1/apply with a keda.sh ScaledObject: answers r. */
void api_scaledobject_apply(api_t *a, hs_req_t *r, const cJSON *doc);
/* /v1/scaledobjects and /v1/scaledobjects/NAME (path p): answers r. */
void api_scaledobjects_handle(api_t *a, hs_req_t *r, const char *p);
/* Runs every stored ScaledObject (at start); those that fail are
 * reported on stderr and skipped. -1 when the store fails. */
int api_scaledobjects_load(api_t *a, char *err, size_t errlen);

#endif

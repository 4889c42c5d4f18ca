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
/* Runs again every ScaledObject that names a TriggerAuthentication or has
 * ...FromEnv parameters, with its values resolved anew: after a
 * TriggerAuthentication, Secret or ConfigMap changes. Its replicas and
 * activity carry over (kd_apply). */
void api_scaledobjects_refresh(api_t *a);
/* Runs again the stored ScaledObject that scales Service service, when it
 * may read values from that Service's env (...FromEnv, or a
 * TriggerAuthentication's env): after an apply of the Service. */
void api_scaledobjects_env_changed(api_t *a, const char *service);

/* triggerauths.c: KEDA TriggerAuthentications and
 * ClusterTriggerAuthentications. */
/* POST /v1/apply with a keda.sh TriggerAuthentication or
 * ClusterTriggerAuthentication: answers r. */
void api_triggerauth_apply(api_t *a, hs_req_t *r, const cJSON *doc);
/* /v1/triggerauthentications[/NAME] (path p), or with cluster
 * /v1/clustertriggerauthentications[/NAME]: answers r. */
void api_triggerauths_handle(api_t *a, hs_req_t *r, const char *p, bool cluster);
/* kd_auth_resolve_fn over the store (ud: the api_t): the values of the
 * Secret and ConfigMap keys that TriggerAuthentication (with cluster,
 * ClusterTriggerAuthentication) name names. */
int api_triggerauth_resolve(void *ud, const char *name, bool cluster, const char *service,
                            kd_auth_param_t **params, uint32_t *n, char *err, size_t errlen);
/* triggerenv.c: kd_env_resolve_fn over the store (ud: the api_t): env var
 * of Service service's latest revision, its Secret or ConfigMap value
 * opened when it has one. */
int api_trigger_env_resolve(void *ud, const char *service, const char *var, char **value,
                            char *err, size_t errlen);

#endif

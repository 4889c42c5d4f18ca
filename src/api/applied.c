/*
 * applied.c — the answer to POST /v1/apply for one object (docs/api.md):
 * {"kind", "name", "created", "warnings": [...]}, built once for the kinds
 * that answer just that (ScaledObject, TriggerAuthentication).
 */
#include "api/internal.h"

cJSON *api_applied_json(const char *kind, const char *name, bool created,
                        char *const *warnings, uint32_t nwarnings)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddBoolToObject(o, "created", created);
    cJSON *w = cJSON_AddArrayToObject(o, "warnings");
    for (uint32_t i = 0; i < nwarnings; i++)
        cJSON_AddItemToArray(w, cJSON_CreateString(warnings[i]));
    return o;
}

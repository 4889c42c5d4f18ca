/*
 * jsonerr.c — JSON error bodies (jsonerr.h), for the admin API, the usage
 * API and broker ingress alike.
 */
#include "common/jsonerr.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/logring.h"

char *cm_json_error(const char *msg)
{
    /* Messages echo what the client sent (a name, a path): bytes that are
     * not UTF-8 would make the body invalid JSON, and cJSON passes them
     * through; lr_escape turns them (and control characters) into visible
     * \xHH text. A message cut mid-character is safe too. */
    size_t n = strlen(msg);
    char *safe = malloc(4 * n + 1);
    if (!safe) return NULL;
    safe[lr_escape(msg, n, safe, 0)] = '\0';
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "error", safe)) s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(safe);
    return s;
}

/*
 * jsonerr.h — the body of every JSON error answer, {"error":"MESSAGE"}.
 * Prefix: cm_json_.
 */
#ifndef WASMFN_COMMON_JSONERR_H
#define WASMFN_COMMON_JSONERR_H

/* Returns a malloc'd {"error":"MESSAGE"} (the caller frees it), or NULL
 * when out of memory. Bytes of msg that are not printable UTF-8 are
 * written as visible \xHH text (lr_escape), so a message that echoes what a
 * client sent always makes valid JSON. */
char *cm_json_error(const char *msg);

/* What to send when cm_json_error returned NULL. */
#define CM_JSON_ERROR_OOM "{\"error\":\"out of memory\"}"

#endif

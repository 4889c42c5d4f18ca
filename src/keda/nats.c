/*
 * nats.c — the nats-jetstream trigger (Debian's libnats): the consumer's
 * backlog from JetStream's consumer info, NumPending (messages in the
 * stream not yet delivered to it) plus NumAckPending (delivered, not yet
 * acknowledged). KEDA reads the same numbers from the server's monitoring
 * endpoint over HTTP; wasmfn asks the server over its client protocol
 * (natsServerUrl, or the monitoring endpoint's host on port 4222). One
 * connection per poll, bounded by KD_TRIGGER_TIMEOUT_MS.
 */
#include <nats/nats.h>
#include <stdio.h>

#include "keda/internal.h"

int kd_read_nats(const kd_trigger_t *t, double *value, char *err, size_t errlen)
{
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsConsumerInfo *ci = NULL;
    jsOptions jo;
    jsErrCode jerr = 0;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetURL(o, t->url);
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, KD_TRIGGER_TIMEOUT_MS);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK) s = natsConnection_Connect(&nc, o);
    if (s == NATS_OK) s = jsOptions_Init(&jo);
    if (s == NATS_OK) {
        jo.Wait = KD_TRIGGER_TIMEOUT_MS;
        s = natsConnection_JetStream(&js, nc, &jo);
    }
    if (s == NATS_OK) s = js_GetConsumerInfo(&ci, js, t->stream, t->group, NULL, &jerr);
    if (s == NATS_OK) {
        *value = (double)ci->NumPending + (double)(ci->NumAckPending > 0 ? ci->NumAckPending : 0);
    } else {
        const char *last = nats_GetLastError(NULL);
        snprintf(err, errlen, "nats %s stream %s consumer %s: %s%s%s", t->url, t->stream, t->group,
                 natsStatus_GetText(s), last && *last ? ": " : "", last ? last : "");
    }
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return s == NATS_OK ? 0 : -1;
}

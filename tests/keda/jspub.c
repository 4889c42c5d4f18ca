/*
 * jspub.c — a test helper for tests/keda/run_tests.sh: creates JetStream
 * stream STREAM (subject STREAM.>) and a durable pull consumer CONSUMER on
 * it, then publishes N messages, so that the consumer has N pending.
 *
 *   jspub NATS_URL STREAM CONSUMER N
 */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: jspub NATS_URL STREAM CONSUMER N\n");
        return 2;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    char subj[256];
    snprintf(subj, sizeof subj, "%s.>", argv[2]);
    const char *subjects[] = {subj};
    jsStreamConfig sc;
    jsConsumerConfig cc;
    natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK) s = jsStreamConfig_Init(&sc);
    if (s == NATS_OK) {
        sc.Name = argv[2];
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        s = js_AddStream(&si, js, &sc, NULL, &jerr);
    }
    if (s == NATS_OK) s = jsConsumerConfig_Init(&cc);
    if (s == NATS_OK) {
        cc.Durable = argv[3];
        cc.AckPolicy = js_AckExplicit;
        s = js_AddConsumer(&ci, js, argv[2], &cc, NULL, &jerr);
    }
    int n = atoi(argv[4]);
    snprintf(subj, sizeof subj, "%s.job", argv[2]);
    for (int i = 0; s == NATS_OK && i < n; i++) s = js_Publish(NULL, js, subj, "x", 1, NULL, &jerr);
    if (s != NATS_OK)
        fprintf(stderr, "jspub: %s (JetStream error %d): %s\n", natsStatus_GetText(s), (int)jerr,
                nats_GetLastError(NULL));
    jsConsumerInfo_Destroy(ci);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return s == NATS_OK ? 0 : 1;
}

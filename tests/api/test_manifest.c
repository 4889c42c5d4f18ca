/*
 * test_manifest.c — Knative Service validation (good documents, and each
 * bad field producing an error that names it), quantity and duration
 * syntax, and applying: revision numbering, template-change detection,
 * traffic validation and the rollback when the data plane refuses.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/manifest.h"

#define HEX_A "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

/* Builds a document from a template where IMG stands for sha256:HEX_A and
 * single quotes for double quotes (to keep the JSON readable here). */
static cJSON *doc_of(const char *tmpl)
{
    char buf[8192];
    size_t o = 0;
    for (const char *p = tmpl; *p && o < sizeof buf - 80; p++) {
        if (strncmp(p, "IMG", 3) == 0) {
            o += (size_t)snprintf(buf + o, sizeof buf - o, "sha256:%s", HEX_A);
            p += 2;
        } else {
            buf[o++] = *p == '\'' ? '"' : *p;
        }
    }
    buf[o] = 0;
    cJSON *d = cJSON_Parse(buf);
    if (!d) fail_msg("bad test JSON: %s", buf);
    return d;
}

/* A minimal good Service with the given template spec fields, template
 * annotations and spec-level extra (each a JSON fragment, may be ""). */
static cJSON *service(const char *ann, const char *tspec_extra, const char *ctr_extra,
                      const char *spec_extra)
{
    char buf[8192];
    snprintf(buf, sizeof buf,
             "{'apiVersion':'serving.knative.dev/v1','kind':'Service',"
             "'metadata':{'name':'hello'},"
             "'spec':{'template':{'metadata':{'annotations':{%s}},"
             "'spec':{%s%s'containers':[{'image':'IMG'%s%s}]}}%s%s}}",
             ann, tspec_extra, *tspec_extra ? "," : "", *ctr_extra ? "," : "", ctr_extra,
             *spec_extra ? "," : "", spec_extra);
    return doc_of(buf);
}

/* Parses and expects an error starting with want_prefix. */
static void expect_error(cJSON *d, const char *want_prefix)
{
    api_service_t s;
    char err[512] = "";
    int rc = api_service_parse(d, &s, err, sizeof err);
    if (rc == 0) fail_msg("expected an error starting with '%s', got success", want_prefix);
    if (strncmp(err, want_prefix, strlen(want_prefix)) != 0)
        fail_msg("error '%s' does not start with '%s'", err, want_prefix);
    cJSON_Delete(d);
}

static void parse_ok(cJSON *d, api_service_t *s)
{
    char err[512] = "";
    if (api_service_parse(d, s, err, sizeof err) != 0) fail_msg("unexpected error: %s", err);
    cJSON_Delete(d);
}

static bool has_warning(const api_service_t *s, const char *prefix)
{
    for (uint32_t i = 0; i < s->nwarnings; i++)
        if (strncmp(s->warnings[i], prefix, strlen(prefix)) == 0) return true;
    return false;
}

/* ---- Parsing good documents ------------------------------------------------ */

static void test_minimal_service_gets_defaults(void **state)
{
    (void)state;
    api_service_t s;
    parse_ok(service("", "", "", ""), &s);
    assert_string_equal(s.name, "hello");
    assert_string_equal(s.spec.image, "sha256:" HEX_A);
    assert_int_equal(s.spec.nenv, 0);
    assert_int_equal(s.spec.memory_limit_bytes, 128u << 20);
    assert_int_equal(s.spec.timeout_seconds, 30);
    assert_int_equal(s.spec.min_scale, 0);
    assert_int_equal(s.spec.max_scale, 0);
    assert_int_equal(s.spec.initial_scale, 1);
    assert_true(s.spec.target == 1.0);
    assert_int_equal(s.spec.window_seconds, 60);
    assert_int_equal(s.ntraffic, 0);
    assert_int_equal(s.nwarnings, 0);
    api_service_free(&s);
}

/* Secret and ConfigMap references and kv-stores grants parse into the
 * spec, which compares them (a changed reference is a new template). */
static void test_host_parts(void **state)
{
    (void)state;
    api_service_t s, t;
    parse_ok(service("'wasmfn.dev/kv-stores':' counters, sessions '", "",
                     "'env':[{'name':'P','valueFrom':{'secretKeyRef':{'name':'db','key':'password'}}},"
                     "{'name':'M','valueFrom':{'configMapKeyRef':{'name':'cfg','key':'mode','optional':true}}}]",
                     ""),
             &s);
    assert_int_equal(s.spec.nkv_stores, 2);
    assert_string_equal(s.spec.kv_stores[0], "counters");
    assert_string_equal(s.spec.kv_stores[1], "sessions");
    assert_int_equal(s.spec.nenv_refs, 2);
    assert_true(s.spec.env_refs[0].secret);
    assert_string_equal(s.spec.env_refs[0].object, "db");
    assert_string_equal(s.spec.env_refs[0].key, "password");
    assert_false(s.spec.env_refs[0].optional);
    assert_false(s.spec.env_refs[1].secret);
    assert_true(s.spec.env_refs[1].optional);
    assert_int_equal(s.spec.nenv, 0);
    st_spec_t c;
    assert_int_equal(st_spec_copy(&c, &s.spec), 0);
    assert_true(st_spec_equal(&c, &s.spec));
    c.env_refs[0].version = 7; /* the secret changed */
    assert_false(st_spec_equal(&c, &s.spec));
    st_spec_free(&c);
    parse_ok(service("'wasmfn.dev/kv-stores':'counters'", "", "", ""), &t);
    assert_false(st_spec_equal(&t.spec, &s.spec));
    api_service_free(&s);
    api_service_free(&t);
}

static void test_full_service(void **state)
{
    (void)state;
    api_service_t s;
    parse_ok(service("'autoscaling.knative.dev/min-scale':'1','autoscaling.knative.dev/max-scale':'10',"
                     "'autoscaling.knative.dev/initial-scale':'2','autoscaling.knative.dev/target':'2.5',"
                     "'autoscaling.knative.dev/window':'2m','other.example.com/x':'y'",
                     "'runtimeClassName':'wasm','timeoutSeconds':5",
                     "'env':[{'name':'GREETING','value':'hi'},{'name':'EMPTY'},{'name':'N','value':3}],"
                     "'resources':{'limits':{'memory':'64Mi'}}",
                     "'traffic':[{'revisionName':'hello-00001','percent':90},"
                     "{'latestRevision':true,'percent':10}]"),
             &s);
    assert_int_equal(s.spec.min_scale, 1);
    assert_int_equal(s.spec.max_scale, 10);
    assert_int_equal(s.spec.initial_scale, 2);
    assert_true(s.spec.target == 2.5);
    assert_int_equal(s.spec.window_seconds, 120);
    assert_int_equal(s.spec.timeout_seconds, 5);
    assert_int_equal(s.spec.memory_limit_bytes, 64u << 20);
    assert_int_equal(s.spec.nenv, 3);
    assert_string_equal(s.spec.env[0], "GREETING=hi");
    assert_string_equal(s.spec.env[1], "EMPTY=");
    assert_string_equal(s.spec.env[2], "N=3");
    assert_int_equal(s.ntraffic, 2);
    assert_string_equal(s.traffic[0].revision, "hello-00001");
    assert_false(s.traffic[0].latest);
    assert_int_equal(s.traffic[0].percent, 90);
    assert_null(s.traffic[1].revision);
    assert_true(s.traffic[1].latest);
    assert_int_equal(s.traffic[1].percent, 10);
    /* Foreign annotations are someone else's business: no warning. */
    assert_int_equal(s.nwarnings, 0);
    api_service_free(&s);
}

static void test_old_annotation_spellings(void **state)
{
    (void)state;
    api_service_t s;
    parse_ok(service("'autoscaling.knative.dev/minScale':'2','autoscaling.knative.dev/maxScale':3,"
                     "'autoscaling.knative.dev/initialScale':'0'",
                     "", "", ""),
             &s);
    assert_int_equal(s.spec.min_scale, 2);
    assert_int_equal(s.spec.max_scale, 3);
    assert_int_equal(s.spec.initial_scale, 0);
    api_service_free(&s);
}

static void test_unknown_fields_warn(void **state)
{
    (void)state;
    api_service_t s;
    cJSON *d = service("'autoscaling.knative.dev/panic-window-percentage':'20'",
                       "'containerConcurrency':1",
                       "'ports':[{'containerPort':8080}],'resources':{'limits':{'memory':'1Gi','cpu':'500m'}}",
                       "'traffic':[{'latestRevision':true,'percent':100,'tag':'current'}]");
    cJSON_AddStringToObject(d, "extra", "x");
    parse_ok(d, &s);
    assert_true(has_warning(&s, "spec.template.metadata.annotations[autoscaling.knative.dev/panic-window-percentage]"));
    assert_true(has_warning(&s, "spec.template.spec.containerConcurrency: unknown field"));
    assert_true(has_warning(&s, "spec.template.spec.containers[0].ports: unknown field"));
    assert_false(has_warning(&s, "spec.template.spec.containers[0].resources.limits.cpu"));
    assert_true(has_warning(&s, "spec.traffic[0].tag"));
    assert_true(has_warning(&s, "extra: unknown field"));
    assert_int_equal(s.nwarnings, 5);
    assert_int_equal(s.spec.memory_limit_bytes, 1u << 30);
    assert_int_equal(s.spec.cpu_limit_millis, 500); /* honoured now (issue 18) */
    api_service_free(&s);
}

/* resources: limits.cpu is honoured (issue 18), requests are kept for
 * KEDA's cpu and memory triggers, and bad quantities name their field. */
static void test_resources_cpu_and_requests(void **state)
{
    (void)state;
    api_service_t s;
    parse_ok(service("", "",
                     "'resources':{'limits':{'cpu':'1.5'},'requests':{'cpu':'250m','memory':'32Mi',"
                     "'ephemeral-storage':'1Gi'}}",
                     ""),
             &s);
    assert_int_equal(s.spec.cpu_limit_millis, 1500);
    assert_int_equal(s.spec.cpu_request_millis, 250);
    assert_int_equal(s.spec.memory_request_bytes, 32u << 20);
    assert_true(has_warning(&s, "spec.template.spec.containers[0].resources.requests.ephemeral-storage"));
    api_service_free(&s);
    parse_ok(service("", "", "'resources':{'limits':{'cpu':2}}", ""), &s);
    assert_int_equal(s.spec.cpu_limit_millis, 2000);
    api_service_free(&s);
    expect_error(service("", "", "'resources':{'limits':{'cpu':'half'}}", ""),
                 "spec.template.spec.containers[0].resources.limits.cpu: must be a CPU quantity");
    expect_error(service("", "", "'resources':{'limits':{'cpu':'0'}}", ""),
                 "spec.template.spec.containers[0].resources.limits.cpu: must be a CPU quantity");
    expect_error(service("", "", "'resources':{'limits':{'cpu':'100m'},'requests':{'cpu':'200m'}}", ""),
                 "spec.template.spec.containers[0].resources.requests.cpu: 200m is above limits.cpu");
}

/* ---- Each bad field named -------------------------------------------------- */

static void test_bad_kinds(void **state)
{
    (void)state;
    expect_error(doc_of("{'apiVersion':'apps/v1','kind':'Deployment','metadata':{'name':'x'}}"),
                 "kind: Deployment (apps/v1) is not supported");
    expect_error(doc_of("{'apiVersion':'sources.knative.dev/v1','kind':'PingSource'}"),
                 "kind: PingSource");
    expect_error(doc_of("{'apiVersion':'serving.knative.dev/v1alpha1','kind':'Service'}"),
                 "apiVersion: serving.knative.dev/v1alpha1 is not supported");
    expect_error(doc_of("{'apiVersion':'serving.knative.dev/v1'}"), "kind: required");
    expect_error(doc_of("{'kind':'Service'}"), "apiVersion: required");
    expect_error(doc_of("[1,2]"), "the document must be an object");
}

static void test_bad_metadata(void **state)
{
    (void)state;
    const char *head = "{'apiVersion':'serving.knative.dev/v1','kind':'Service',";
    char buf[512];
    snprintf(buf, sizeof buf, "%s'spec':{}}", head);
    expect_error(doc_of(buf), "metadata.name: required");
    snprintf(buf, sizeof buf, "%s'metadata':{'name':'Hello'},'spec':{}}", head);
    expect_error(doc_of(buf), "metadata.name: \"Hello\" must be");
    snprintf(buf, sizeof buf, "%s'metadata':{'name':'a_b'},'spec':{}}", head);
    expect_error(doc_of(buf), "metadata.name:");
    snprintf(buf, sizeof buf, "%s'metadata':{'name':'1abc'},'spec':{}}", head);
    expect_error(doc_of(buf), "metadata.name:");
    snprintf(buf, sizeof buf, "%s'metadata':{'name':'abc-'},'spec':{}}", head);
    expect_error(doc_of(buf), "metadata.name:");
    snprintf(buf, sizeof buf, "%s'metadata':{'name':'%s'},'spec':{}}", head,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); /* 58 */
    expect_error(doc_of(buf), "metadata.name:");
    snprintf(buf, sizeof buf, "%s'metadata':{'name':7},'spec':{}}", head);
    expect_error(doc_of(buf), "metadata.name:");
    snprintf(buf, sizeof buf, "%s'metadata':{'name':'ok'}}", head);
    expect_error(doc_of(buf), "spec: required");
    snprintf(buf, sizeof buf, "%s'metadata':{'name':'ok'},'spec':{}}", head);
    expect_error(doc_of(buf), "spec.template: required");
    snprintf(buf, sizeof buf, "%s'metadata':{'name':'ok'},'spec':{'template':{}}}", head);
    expect_error(doc_of(buf), "spec.template.spec: required");
    snprintf(buf, sizeof buf, "%s'metadata':{'name':'ok'},'spec':{'template':{'spec':{}}}}", head);
    expect_error(doc_of(buf), "spec.template.spec.containers: required");
    snprintf(buf, sizeof buf,
             "%s'metadata':{'name':'ok'},'spec':{'template':{'spec':{'containers':[]}}}}", head);
    expect_error(doc_of(buf), "spec.template.spec.containers: must hold one container");
    snprintf(buf, sizeof buf,
             "%s'metadata':{'name':'ok'},'spec':{'template':{'spec':{'containers':[{'image':'IMG'},"
             "{'image':'IMG'}]}}}}",
             head);
    expect_error(doc_of(buf), "spec.template.spec.containers: 2 containers given");
    snprintf(buf, sizeof buf, "%s'metadata':{'name':'ok'},'spec':{'template':'x'}}", head);
    expect_error(doc_of(buf), "spec.template: must be an object");
}

static void test_bad_container_fields(void **state)
{
    (void)state;
    const char *c0 = "spec.template.spec.containers[0]";
    char want[256];
    cJSON *d = service("", "", "", "");
    cJSON *ctr = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"),
                                                                    "template"),
                                                "spec"),
                            "containers"),
        0);
    cJSON_ReplaceItemInObject(ctr, "image", cJSON_CreateString("./hello.wasm"));
    snprintf(want, sizeof want, "%s.image: \"./hello.wasm\" is neither a sha256:HEX digest", c0);
    expect_error(d, want);

    d = doc_of("{'apiVersion':'serving.knative.dev/v1','kind':'Service','metadata':{'name':'a'},"
               "'spec':{'template':{'spec':{'containers':[{'image':'sha256:ABC'}]}}}}");
    snprintf(want, sizeof want, "%s.image: \"sha256:ABC\" is not sha256: followed by", c0);
    expect_error(d, want);
    d = doc_of("{'apiVersion':'serving.knative.dev/v1','kind':'Service','metadata':{'name':'a'},"
               "'spec':{'template':{'spec':{'containers':[{'env':[]}]}}}}");
    snprintf(want, sizeof want, "%s.image: required", c0);
    expect_error(d, want);

    snprintf(want, sizeof want, "%s.env[1].name: required", c0);
    expect_error(service("", "", "'env':[{'name':'A','value':'1'},{'value':'x'}]", ""), want);
    snprintf(want, sizeof want, "%s.env[0].name: \"A=B\" must not contain '='", c0);
    expect_error(service("", "", "'env':[{'name':'A=B'}]", ""), want);
    snprintf(want, sizeof want, "%s.env[1].name: A is given twice", c0);
    expect_error(service("", "", "'env':[{'name':'A'},{'name':'A','value':'2'}]", ""), want);
    snprintf(want, sizeof want, "%s.env[0].valueFrom.secretKeyRef.name: required", c0);
    expect_error(service("", "", "'env':[{'name':'A','valueFrom':{'secretKeyRef':{}}}]", ""), want);
    snprintf(want, sizeof want, "%s.env[0].valueFrom.fieldRef: not supported", c0);
    expect_error(service("", "", "'env':[{'name':'A','valueFrom':{'fieldRef':{}}}]", ""), want);
    snprintf(want, sizeof want, "%s.env[0].valueFrom: needs exactly one of", c0);
    expect_error(service("", "", "'env':[{'name':'A','valueFrom':{'secretKeyRef':{'name':'s','key':'k'},"
                                 "'configMapKeyRef':{'name':'c','key':'k'}}}]", ""), want);
    snprintf(want, sizeof want, "%s.env[0]: value and valueFrom exclude each other", c0);
    expect_error(service("", "", "'env':[{'name':'A','value':'x','valueFrom':{'secretKeyRef':"
                                 "{'name':'s','key':'k'}}}]", ""), want);
    snprintf(want, sizeof want, "%s.env[0].valueFrom.secretKeyRef.key: required", c0);
    expect_error(service("", "", "'env':[{'name':'A','valueFrom':{'secretKeyRef':{'name':'s','key':'a/b'}}}]", ""), want);
    snprintf(want, sizeof want, "%s.env[1].name: A is given twice", c0);
    expect_error(service("", "", "'env':[{'name':'A','valueFrom':{'secretKeyRef':{'name':'s','key':'k'}}},"
                                 "{'name':'A','value':'2'}]", ""), want);
    expect_error(service("'wasmfn.dev/kv-stores':'a,Bad'", "", "", ""),
                 "spec.template.metadata.annotations[wasmfn.dev/kv-stores]: \"Bad\" is not a store name");
    expect_error(service("'wasmfn.dev/kv-stores':'a, a'", "", "", ""),
                 "spec.template.metadata.annotations[wasmfn.dev/kv-stores]: a is given twice");
    snprintf(want, sizeof want, "%s.env[0].value: must be a string", c0);
    expect_error(service("", "", "'env':[{'name':'A','value':{'x':1}}]", ""), want);
    snprintf(want, sizeof want, "%s.env: must be a list", c0);
    expect_error(service("", "", "'env':{'A':'1'}", ""), want);

    snprintf(want, sizeof want, "%s.resources.limits.memory: \"64MB\" is not a quantity", c0);
    expect_error(service("", "", "'resources':{'limits':{'memory':'64MB'}}", ""), want);
    snprintf(want, sizeof want, "%s.resources.limits.memory: 1024 bytes is below one 64Ki page", c0);
    expect_error(service("", "", "'resources':{'limits':{'memory':'1Ki'}}", ""), want);
    snprintf(want, sizeof want, "%s.resources.limits.memory: 5368709120 bytes is above 4Gi", c0);
    expect_error(service("", "", "'resources':{'limits':{'memory':'5Gi'}}", ""), want);
    snprintf(want, sizeof want, "%s.resources.limits.memory: must be a quantity", c0);
    expect_error(service("", "", "'resources':{'limits':{'memory':true}}", ""), want);
    snprintf(want, sizeof want, "%s.resources.limits: must be an object", c0);
    expect_error(service("", "", "'resources':{'limits':[]}", ""), want);
}

static void test_bad_template_spec_fields(void **state)
{
    (void)state;
    const char *want = "spec.template.spec.timeoutSeconds: must be a positive integer";
    expect_error(service("", "'timeoutSeconds':0", "", ""), want);
    expect_error(service("", "'timeoutSeconds':-3", "", ""), want);
    expect_error(service("", "'timeoutSeconds':1.5", "", ""), want);
    expect_error(service("", "'timeoutSeconds':'30'", "", ""), want);
    expect_error(service("", "'timeoutSeconds':3601", "", ""), want);
    api_service_t s;
    parse_ok(service("", "'timeoutSeconds':3600", "", ""), &s);
    assert_int_equal(s.spec.timeout_seconds, 3600);
    api_service_free(&s);
    expect_error(service("", "'runtimeClassName':5", "", ""), "spec.template.spec.runtimeClassName");
}

static void test_bad_annotations(void **state)
{
    (void)state;
    const char *p = "spec.template.metadata.annotations[autoscaling.knative.dev/";
    char want[256];
    snprintf(want, sizeof want, "%smin-scale]: \"-1\" is not a whole number", p);
    expect_error(service("'autoscaling.knative.dev/min-scale':'-1'", "", "", ""), want);
    snprintf(want, sizeof want, "%smaxScale]: \"many\" is not a whole number", p);
    expect_error(service("'autoscaling.knative.dev/maxScale':'many'", "", "", ""), want);
    snprintf(want, sizeof want, "%sinitial-scale]: \"1.5\" is not a whole number", p);
    expect_error(service("'autoscaling.knative.dev/initial-scale':'1.5'", "", "", ""), want);
    snprintf(want, sizeof want, "%starget]: \"0\" is not a number", p);
    expect_error(service("'autoscaling.knative.dev/target':'0'", "", "", ""), want);
    snprintf(want, sizeof want, "%swindow]: \"60\" is not a duration", p);
    expect_error(service("'autoscaling.knative.dev/window':'60'", "", "", ""), want);
    snprintf(want, sizeof want, "%swindow]: 5s is outside 6s..1h", p);
    expect_error(service("'autoscaling.knative.dev/window':'5s'", "", "", ""), want);
    snprintf(want, sizeof want, "%swindow]: 2h is outside", p);
    expect_error(service("'autoscaling.knative.dev/window':'2h'", "", "", ""), want);
    snprintf(want, sizeof want, "%swindow]: \"6500ms\" is not a whole number of seconds", p);
    expect_error(service("'autoscaling.knative.dev/window':'6500ms'", "", "", ""), want);
    snprintf(want, sizeof want, "%smin-scale]: 5 is above max-scale 3", p);
    expect_error(service("'autoscaling.knative.dev/min-scale':'5','autoscaling.knative.dev/max-scale':'3'",
                         "", "", ""),
                 want);
    snprintf(want, sizeof want, "%sinitialScale]: 4 is above max-scale 3", p);
    expect_error(service("'autoscaling.knative.dev/initialScale':'4','autoscaling.knative.dev/max-scale':'3'",
                         "", "", ""),
                 want);
    snprintf(want, sizeof want, "%sminScale]: given twice (also as autoscaling.knative.dev/min-scale)", p);
    expect_error(service("'autoscaling.knative.dev/min-scale':'1','autoscaling.knative.dev/minScale':'1'",
                         "", "", ""),
                 want);
    snprintf(want, sizeof want, "%smin-scale]: must be a string", p);
    expect_error(service("'autoscaling.knative.dev/min-scale':[1]", "", "", ""), want);

    /* max-scale alone below the default initial scale of 1: clamped, no error. */
    api_service_t s;
    parse_ok(service("'autoscaling.knative.dev/window':'1m30s'", "", "", ""), &s);
    assert_int_equal(s.spec.window_seconds, 90);
    api_service_free(&s);
}

static void test_bad_traffic(void **state)
{
    (void)state;
    expect_error(service("", "", "", "'traffic':[{'latestRevision':true,'percent':90}]"),
                 "spec.traffic: the percents add up to 90, not 100");
    expect_error(service("", "", "", "'traffic':[{'latestRevision':true,'percent':60},"
                                     "{'revisionName':'hello-00001','percent':60}]"),
                 "spec.traffic: the percents add up to 120, not 100");
    expect_error(service("", "", "", "'traffic':[{'latestRevision':true,'percent':101}]"),
                 "spec.traffic[0].percent: must be an integer from 0 to 100");
    expect_error(service("", "", "", "'traffic':[{'latestRevision':true,'percent':'100'}]"),
                 "spec.traffic[0].percent: must be an integer");
    expect_error(service("", "", "", "'traffic':[{'latestRevision':true,'percent':50},"
                                     "{'percent':50}]"),
                 "spec.traffic[1]: needs revisionName or latestRevision: true");
    expect_error(service("", "", "", "'traffic':[{'latestRevision':true,'revisionName':'hello-00001',"
                                     "'percent':100}]"),
                 "spec.traffic[0]: revisionName and latestRevision: true exclude each other");
    expect_error(service("", "", "", "'traffic':[{'latestRevision':'yes','percent':100}]"),
                 "spec.traffic[0].latestRevision: must be true or false");
    expect_error(service("", "", "", "'traffic':[{'revisionName':'Bad Name','percent':100}]"),
                 "spec.traffic[0].revisionName: \"Bad Name\" is not a revision name");
    expect_error(service("", "", "", "'traffic':{'latestRevision':true}"),
                 "spec.traffic: must be a list");
    /* Percent may be left out on a 0% entry; an empty list means the default. */
    api_service_t s;
    parse_ok(service("", "", "", "'traffic':[{'latestRevision':true,'percent':100},"
                                 "{'revisionName':'hello-00001'}]"),
             &s);
    assert_int_equal(s.ntraffic, 2);
    assert_int_equal(s.traffic[1].percent, 0);
    api_service_free(&s);
    parse_ok(service("", "", "", "'traffic':[]"), &s);
    assert_int_equal(s.ntraffic, 0);
    api_service_free(&s);
}

/* ---- Value syntaxes -------------------------------------------------------- */

static void test_quantities(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"64Mi", 64ull << 20}, {"1Gi", 1ull << 30}, {"128M", 128000000}, {"1048576", 1048576},
        {"0.5Gi", 1ull << 29}, {"1e6", 1000000}, {"1.5Ki", 1536}, {"2k", 2000},
        {"1Ti", 1ull << 40}, {"3G", 3000000000ull}, {"+10", 10}, {"1500m", 2}, {"0", 0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 0;
        if (api_quantity_parse(good[i].s, &v) != 0) fail_msg("'%s' rejected", good[i].s);
        if (v != good[i].v) fail_msg("'%s' -> %llu, want %llu", good[i].s, (unsigned long long)v,
                                     (unsigned long long)good[i].v);
    }
    static const char *bad[] = {"", "Mi", "64MB", "64mi", "-1", "1.2.3", "64 Mi", "1e", "0x10",
                                "100000Ei", "1Gi ", "e6"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v;
        if (api_quantity_parse(bad[i], &v) == 0) fail_msg("'%s' accepted", bad[i]);
    }
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t ns;
    } good[] = {
        {"60s", 60000000000ull}, {"2m", 120000000000ull}, {"1m30s", 90000000000ull},
        {"1h", 3600000000000ull}, {"1.5s", 1500000000ull}, {"500ms", 500000000ull},
        {"10us", 10000}, {"7ns", 7},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 0;
        if (api_duration_parse(good[i].s, &v) != 0) fail_msg("'%s' rejected", good[i].s);
        if (v != good[i].ns) fail_msg("'%s' -> %llu", good[i].s, (unsigned long long)v);
    }
    static const char *bad[] = {"", "60", "s", "1d", "-1s", "1 s", "1s2", ".s", "9999999999h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v;
        if (api_duration_parse(bad[i], &v) == 0) fail_msg("'%s' accepted", bad[i]);
    }
}

/* ---- Applying -------------------------------------------------------------- */

typedef struct fake_plane {
    int calls;
    bool refuse;
    char last_name[64];
    bool last_deleted;
    int last_targets;
    uint32_t last_percent[8];
    char last_revision[8][64];
} fake_plane_t;

static int fake_deploy(void *ud, const char *name, const st_function_t *f, char *err, size_t errlen)
{
    fake_plane_t *p = ud;
    p->calls++;
    snprintf(p->last_name, sizeof p->last_name, "%s", name);
    p->last_deleted = f == NULL;
    if (p->refuse) {
        snprintf(err, errlen, "revision %s: module does not load", f ? f->latest_revision : "?");
        return -1;
    }
    if (f) {
        api_target_t t[8];
        p->last_targets = api_targets_resolve(f, t, err, errlen);
        assert_true(p->last_targets > 0);
        for (int i = 0; i < p->last_targets; i++) {
            p->last_percent[i] = t[i].percent;
            snprintf(p->last_revision[i], 64, "%s", t[i].revision->name);
        }
    }
    return 0;
}

typedef struct env {
    char *dir;
    st_store_t *st;
    fake_plane_t plane;
} env_t;

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof *e);
    const char *base = getenv("TMPDIR");
    assert_true(asprintf(&e->dir, "%s/wasmfn-test-manifest-XXXXXX", base && *base ? base : P_tmpdir) > 0);
    assert_non_null(mkdtemp(e->dir));
    char err[256], d[ST_DIGEST_LEN + 1];
    e->st = st_open(e->dir, err, sizeof err);
    assert_non_null(e->st);
    assert_int_equal(st_blob_put(e->st, (const uint8_t *)"abc", 3, d, err, sizeof err), ST_OK);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    st_close(e->st);
    char *cmd;
    assert_true(asprintf(&cmd, "rm -rf '%s'", e->dir) > 0);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(e->dir);
    free(e);
    return 0;
}

/* Parses doc and applies it; returns the apply's result code. */
static int apply(env_t *e, cJSON *doc, api_apply_result_t *res, char *err, size_t errlen)
{
    api_service_t s;
    if (api_service_parse(doc, &s, err, errlen) != 0) fail_msg("parse: %s", err);
    cJSON_Delete(doc);
    int rc = api_service_apply(e->st, &s, 1700000000, fake_deploy, &e->plane, res, err, errlen);
    api_service_free(&s);
    return rc;
}

static void test_apply_numbers_revisions_on_change_only(void **state)
{
    env_t *e = *state;
    api_apply_result_t r;
    char err[512];
    assert_int_equal(apply(e, service("", "", "", ""), &r, err, sizeof err), 0);
    assert_string_equal(r.revision, "hello-00001");
    assert_true(r.created);
    assert_int_equal(e->plane.calls, 1);
    assert_int_equal(e->plane.last_targets, 1);
    assert_string_equal(e->plane.last_revision[0], "hello-00001");
    assert_int_equal(e->plane.last_percent[0], 100);

    /* The same template again: no new revision. Written differently but
     * meaning the same (defaults spelled out, other annotations) neither. */
    assert_int_equal(apply(e, service("", "", "", ""), &r, err, sizeof err), 0);
    assert_string_equal(r.revision, "hello-00001");
    assert_false(r.created);
    assert_int_equal(apply(e, service("'autoscaling.knative.dev/window':'60s','x.io/y':'z'",
                                      "'timeoutSeconds':30", "'resources':{'limits':{'memory':'128Mi'}}",
                                      ""),
                           &r, err, sizeof err),
                     0);
    assert_false(r.created);

    /* Each change makes the next revision: env, memory, timeout, scaling. */
    const char *changes[][3] = {
        {"", "", "'env':[{'name':'A','value':'1'}]"},
        {"", "", "'env':[{'name':'A','value':'2'}]"},
        {"", "", "'resources':{'limits':{'memory':'64Mi'}}"},
        {"", "'timeoutSeconds':5", ""},
        {"'autoscaling.knative.dev/max-scale':'4'", "", ""},
        {"'autoscaling.knative.dev/target':'3'", "", ""},
    };
    for (int i = 0; i < 6; i++) {
        assert_int_equal(apply(e, service(changes[i][0], changes[i][1], changes[i][2], ""), &r, err,
                               sizeof err),
                         0);
        assert_true(r.created);
        char want[32];
        snprintf(want, sizeof want, "hello-%05d", i + 2);
        assert_string_equal(r.revision, want);
    }
    /* Going back to an earlier template still makes a new revision. */
    assert_int_equal(apply(e, service("", "", "", ""), &r, err, sizeof err), 0);
    assert_true(r.created);
    assert_string_equal(r.revision, "hello-00008");

    st_function_t f;
    assert_int_equal(st_function_get(e->st, "hello", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 8);
    assert_string_equal(f.latest_revision, "hello-00008");
    assert_int_equal(f.revisions[1].spec.nenv, 1);
    assert_string_equal(f.revisions[1].spec.env[0], "A=1");
    st_function_free(&f);
}

static void test_apply_traffic_split(void **state)
{
    env_t *e = *state;
    api_apply_result_t r;
    char err[512];
    assert_int_equal(apply(e, service("", "", "", ""), &r, err, sizeof err), 0);
    /* A new template with 50/50 between the old and the new revision. */
    assert_int_equal(apply(e, service("", "", "'env':[{'name':'V','value':'2'}]",
                                      "'traffic':[{'revisionName':'hello-00001','percent':50},"
                                      "{'latestRevision':true,'percent':50}]"),
                           &r, err, sizeof err),
                     0);
    assert_string_equal(r.revision, "hello-00002");
    assert_int_equal(e->plane.last_targets, 2);
    assert_string_equal(e->plane.last_revision[0], "hello-00001");
    assert_int_equal(e->plane.last_percent[0], 50);
    assert_string_equal(e->plane.last_revision[1], "hello-00002");
    assert_int_equal(e->plane.last_percent[1], 50);

    /* Routes naming the latest twice are merged; 0% routes are dropped. */
    assert_int_equal(apply(e, service("", "", "'env':[{'name':'V','value':'2'}]",
                                      "'traffic':[{'revisionName':'hello-00002','percent':30},"
                                      "{'latestRevision':true,'percent':70},"
                                      "{'revisionName':'hello-00001','percent':0}]"),
                           &r, err, sizeof err),
                     0);
    assert_false(r.created);
    assert_int_equal(e->plane.last_targets, 1);
    assert_int_equal(e->plane.last_percent[0], 100);

    /* A revision that does not exist is refused and changes nothing. */
    int calls = e->plane.calls;
    assert_int_equal(apply(e, service("", "", "'env':[{'name':'V','value':'3'}]",
                                      "'traffic':[{'revisionName':'hello-00009','percent':100}]"),
                           &r, err, sizeof err),
                     -1);
    assert_int_equal(r.status, 400);
    assert_string_equal(err, "spec.traffic[0].revisionName: hello has no revision hello-00009");
    assert_int_equal(e->plane.calls, calls);
    st_function_t f;
    assert_int_equal(st_function_get(e->st, "hello", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 2); /* hello-00003 was rolled back */
    assert_int_equal(f.nroutes, 3);
    st_function_free(&f);

    /* The revision this apply creates may be named. */
    assert_int_equal(apply(e, service("", "", "'env':[{'name':'V','value':'3'}]",
                                      "'traffic':[{'revisionName':'hello-00003','percent':100}]"),
                           &r, err, sizeof err),
                     0);
    assert_string_equal(e->plane.last_revision[0], "hello-00003");

    /* Traffic left out goes back to 100% latest. */
    assert_int_equal(apply(e, service("", "", "'env':[{'name':'V','value':'3'}]", ""), &r, err,
                           sizeof err),
                     0);
    assert_int_equal(st_function_get(e->st, "hello", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nroutes, 1);
    assert_true(f.routes[0].latest);
    assert_int_equal(f.routes[0].percent, 100);
    st_function_free(&f);
}

static void test_apply_rolls_back_when_plane_refuses(void **state)
{
    env_t *e = *state;
    api_apply_result_t r;
    char err[512];
    assert_int_equal(apply(e, service("", "", "", ""), &r, err, sizeof err), 0);

    e->plane.refuse = true;
    assert_int_equal(apply(e, service("", "", "'env':[{'name':'V','value':'2'}]", ""), &r, err,
                           sizeof err),
                     -1);
    assert_int_equal(r.status, 400);
    assert_false(r.created);
    assert_string_equal(err, "revision hello-00002: module does not load");
    /* A new function refused by the plane is not created at all. */
    cJSON *d = service("", "", "", "");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(d, "metadata"), "name", cJSON_CreateString("fresh"));
    assert_int_equal(apply(e, d, &r, err, sizeof err), -1);
    e->plane.refuse = false;

    st_function_t f;
    assert_int_equal(st_function_get(e->st, "fresh", &f, err, sizeof err), ST_NOT_FOUND);
    assert_int_equal(st_function_get(e->st, "hello", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 1);
    st_function_free(&f);
    /* The number was not used up. */
    assert_int_equal(apply(e, service("", "", "'env':[{'name':'V','value':'2'}]", ""), &r, err,
                           sizeof err),
                     0);
    assert_string_equal(r.revision, "hello-00002");
}

static void test_apply_needs_uploaded_image(void **state)
{
    env_t *e = *state;
    api_apply_result_t r;
    char err[512];
    cJSON *d = service("", "", "", "");
    cJSON *ctr = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"),
                                                                    "template"),
                                                "spec"),
                            "containers"),
        0);
    cJSON_ReplaceItemInObject(
        ctr, "image",
        cJSON_CreateString("sha256:0000000000000000000000000000000000000000000000000000000000000000"));
    assert_int_equal(apply(e, d, &r, err, sizeof err), -1);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(err, "spec.template.spec.containers[0].image: sha256:0000"));
    assert_int_equal(e->plane.calls, 0);
}

/* A registry reference is kept as written and resolved by the caller; the
 * revision records it with the manifest digest it resolved to. The same
 * reference resolving to the same module is the same template (even if the
 * manifest moved); to another module, a new revision, the old one keeping
 * its digests. */
static void test_apply_registry_image(void **state)
{
    env_t *e = *state;
    api_apply_result_t r;
    char err[512], hex_b[ST_DIGEST_LEN + 1];
    assert_int_equal(st_blob_put(e->st, (const uint8_t *)"abd", 3, hex_b, err, sizeof err), ST_OK);
    const char *ref = "127.0.0.1:5000/hello-function:latest";
    const char *man1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const char *man2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const char *man3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
    const char *module[3] = {"sha256:" HEX_A, "sha256:" HEX_A, hex_b};
    const char *manifest[3] = {man1, man2, man3};
    const char *want_rev[3] = {"hello-00001", "hello-00001", "hello-00002"};
    const bool want_created[3] = {true, false, true};
    for (int i = 0; i < 3; i++) {
        char doc[512];
        snprintf(doc, sizeof doc,
                 "{'apiVersion':'serving.knative.dev/v1','kind':'Service','metadata':{'name':"
                 "'hello'},'spec':{'template':{'spec':{'containers':[{'image':'%s'}]}}}}",
                 ref);
        api_service_t s;
        cJSON *d = doc_of(doc);
        if (api_service_parse(d, &s, err, sizeof err) != 0) fail_msg("parse: %s", err);
        cJSON_Delete(d);
        assert_null(s.spec.image);
        assert_string_equal(s.spec.image_ref, ref);
        /* What api.c does once the pull is done. */
        s.spec.image = strdup(module[i]);
        s.spec.image_digest = strdup(manifest[i]);
        int rc = api_service_apply(e->st, &s, 1700000000, fake_deploy, &e->plane, &r, err,
                                   sizeof err);
        api_service_free(&s);
        if (rc != 0) fail_msg("apply %d: %s", i, err);
        assert_string_equal(r.revision, want_rev[i]);
        assert_int_equal(r.created, want_created[i]);
    }
    st_function_t f;
    assert_int_equal(st_function_get(e->st, "hello", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 2);
    assert_string_equal(f.revisions[0].spec.image_ref, ref);
    assert_string_equal(f.revisions[0].spec.image_digest, man1);
    assert_string_equal(f.revisions[0].spec.image, "sha256:" HEX_A);
    assert_string_equal(f.revisions[1].spec.image_digest, man3);
    assert_string_equal(f.revisions[1].spec.image, hex_b);
    st_function_free(&f);

    /* A bad reference names the field. */
    expect_error(doc_of("{'apiVersion':'serving.knative.dev/v1','kind':'Service','metadata':{'name':"
                        "'a'},'spec':{'template':{'spec':{'containers':[{'image':"
                        "'127.0.0.1:5000/Hello:1'}]}}}}"),
                 "spec.template.spec.containers[0].image: bad image reference '127.0.0.1:5000/Hello:1'");
}

static void test_targets_resolve_without_routes(void **state)
{
    (void)state;
    st_revision_t revs[2] = {{.name = "f-00001"}, {.name = "f-00002"}};
    st_function_t f = {.name = "f", .latest_revision = "f-00002", .revisions = revs, .nrevisions = 2};
    api_target_t t[2];
    char err[256];
    assert_int_equal(api_targets_resolve(&f, t, err, sizeof err), 1);
    assert_ptr_equal(t[0].revision, &revs[1]);
    assert_int_equal(t[0].percent, 100);
    st_route_t bad = {.revision = "f-00007", .percent = 100};
    f.routes = &bad;
    f.nroutes = 1;
    assert_int_equal(api_targets_resolve(&f, t, err, sizeof err), -1);
    assert_non_null(strstr(err, "f-00007"));
}

/* wasmfn.dev/allowed-hosts: parsed into the spec (trimmed, repeats
 * dropped), kept by the store, part of the template (a change makes a
 * revision), and each bad entry refused with its name. */
static void test_allowed_hosts(void **state)
{
    env_t *e = *state;
    api_service_t s;
    parse_ok(service("'wasmfn.dev/allowed-hosts':' https://api.example.com, http://127.0.0.1:9000,,"
                     "https://api.example.com'",
                     "", "", ""),
             &s);
    assert_int_equal(s.spec.nallowed_hosts, 2);
    assert_string_equal(s.spec.allowed_hosts[0], "https://api.example.com");
    assert_string_equal(s.spec.allowed_hosts[1], "http://127.0.0.1:9000");
    api_service_free(&s);
    const char *p = "spec.template.metadata.annotations[wasmfn.dev/allowed-hosts]: ";
    char want[256];
    snprintf(want, sizeof want, "%s\"api.example.com\" is not an origin", p);
    expect_error(service("'wasmfn.dev/allowed-hosts':'api.example.com'", "", "", ""), want);
    snprintf(want, sizeof want, "%s\"https://a.example/v1\": a path is not allowed", p);
    expect_error(service("'wasmfn.dev/allowed-hosts':'https://a.example/v1'", "", "", ""), want);
    snprintf(want, sizeof want, "%s\"https://a.*.example.com\": a wildcard may only be", p);
    expect_error(service("'wasmfn.dev/allowed-hosts':'https://a.*.example.com'", "", "", ""), want);
    snprintf(want, sizeof want, "%s\"https://*.com\": a wildcard needs a domain of two labels", p);
    expect_error(service("'wasmfn.dev/allowed-hosts':'https://*.com'", "", "", ""), want);
    snprintf(want, sizeof want, "%s\"ftp://a.example\" is not an origin", p);
    expect_error(service("'wasmfn.dev/allowed-hosts':'ftp://a.example'", "", "", ""), want);
    snprintf(want, sizeof want, "%smust be a string", p);
    expect_error(service("'wasmfn.dev/allowed-hosts':['https://a.example']", "", "", ""), want);

    api_apply_result_t r;
    char err[512];
    assert_int_equal(apply(e, service("'wasmfn.dev/allowed-hosts':'https://a.example'", "", "", ""),
                           &r, err, sizeof err),
                     0);
    assert_true(r.created);
    assert_int_equal(apply(e, service("'wasmfn.dev/allowed-hosts':'https://a.example'", "", "", ""),
                           &r, err, sizeof err),
                     0);
    assert_false(r.created);
    assert_int_equal(apply(e, service("'wasmfn.dev/allowed-hosts':'https://b.example'", "", "", ""),
                           &r, err, sizeof err),
                     0);
    assert_true(r.created);
    st_function_t f;
    assert_int_equal(st_function_get(e->st, "hello", &f, err, sizeof err), ST_OK);
    assert_int_equal(f.nrevisions, 2);
    assert_int_equal(f.revisions[0].spec.nallowed_hosts, 1);
    assert_string_equal(f.revisions[0].spec.allowed_hosts[0], "https://a.example");
    assert_string_equal(f.revisions[1].spec.allowed_hosts[0], "https://b.example");
    st_function_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_service_gets_defaults),
        cmocka_unit_test(test_full_service),
        cmocka_unit_test(test_host_parts),
        cmocka_unit_test(test_old_annotation_spellings),
        cmocka_unit_test(test_unknown_fields_warn),
        cmocka_unit_test(test_bad_kinds),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_bad_container_fields),
        cmocka_unit_test(test_bad_template_spec_fields),
        cmocka_unit_test(test_bad_annotations),
        cmocka_unit_test(test_bad_traffic),
        cmocka_unit_test(test_quantities),
        cmocka_unit_test(test_durations),
        cmocka_unit_test_setup_teardown(test_apply_numbers_revisions_on_change_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_traffic_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_rolls_back_when_plane_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_needs_uploaded_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_registry_image, setup, teardown),
        cmocka_unit_test(test_targets_resolve_without_routes),
        cmocka_unit_test_setup_teardown(test_allowed_hosts, setup, teardown),
        cmocka_unit_test(test_resources_cpu_and_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * k8sname.h — the two forms Kubernetes object names take, checked once for
 * every kind wasmfn accepts. Prefix: cm_k8s_.
 *
 * DNS labels name Services (functions), revisions and ScaledObjects; DNS
 * subdomains name Secrets, ConfigMaps, TriggerAuthentications and
 * namespaces.
 */
#ifndef WASMFN_COMMON_K8SNAME_H
#define WASMFN_COMMON_K8SNAME_H

#include <stdbool.h>
#include <stddef.h>

/* A DNS label as Knative Services need it: 1 to max of lowercase letters,
 * digits and '-', starting with a letter, not ending with '-'. */
bool cm_k8s_label_ok(const char *s, size_t max);

/* A DNS subdomain: 1-253 of lowercase letters, digits, '-' and '.',
 * starting and ending with a letter or digit. */
bool cm_k8s_subdomain_ok(const char *s);

#endif

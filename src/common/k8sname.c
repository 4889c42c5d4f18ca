/*
 * k8sname.c — Kubernetes object names (k8sname.h).
 */
#include "common/k8sname.h"

#include <string.h>

static bool lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool cm_k8s_label_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max || !(s[0] >= 'a' && s[0] <= 'z') || s[n - 1] == '-') return false;
    for (size_t i = 0; i < n; i++)
        if (!lower_or_digit(s[i]) && s[i] != '-') return false;
    return true;
}

bool cm_k8s_subdomain_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253) return false;
    for (size_t i = 0; i < n; i++)
        if (!lower_or_digit(s[i]) && !((s[i] == '-' || s[i] == '.') && i > 0 && i < n - 1))
            return false;
    return true;
}

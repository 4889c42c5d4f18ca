/*
 * triggerauths.c — the trigger_auths and cluster_trigger_auths tables
 * (triggerauths.h): one row per TriggerAuthentication (or
 * ClusterTriggerAuthentication) with the document as applied. Named-
 * document tables (doctable.c), as scaled_objects is; two tables, because
 * the two kinds have names of their own.
 */
#include "store/internal.h"
#include "store/triggerauths.h"

const st_doctable_t st_triggerauth_table = {
    .table = "trigger_auths",
    .kind = "triggerauthentication",
    .one = "trigger authentication",
    .many = "trigger authentications",
};

const st_doctable_t st_clustertriggerauth_table = {
    .table = "cluster_trigger_auths",
    .kind = "clustertriggerauthentication",
    .one = "cluster trigger authentication",
    .many = "cluster trigger authentications",
};

static const st_doctable_t *table_of(bool cluster)
{
    return cluster ? &st_clustertriggerauth_table : &st_triggerauth_table;
}

int st_triggerauth_put(st_store_t *s, bool cluster, const char *name, const char *doc,
                       int64_t now, bool *created, char *err, size_t errlen)
{
    return st_doctable_put(s, table_of(cluster), name, NULL, doc, now, created, NULL, err,
                           errlen);
}

int st_triggerauth_get(st_store_t *s, bool cluster, const char *name, char **doc, char *err,
                       size_t errlen)
{
    return st_doctable_get(s, table_of(cluster), name, doc, err, errlen);
}

int st_triggerauth_delete(st_store_t *s, bool cluster, const char *name, char *err,
                          size_t errlen)
{
    return st_doctable_delete(s, table_of(cluster), name, err, errlen);
}

int st_triggerauth_each(st_store_t *s, bool cluster, st_doc_fn fn, void *ud, char *err,
                        size_t errlen)
{
    return st_doctable_each(s, table_of(cluster), fn, ud, err, errlen);
}

/*
 * triggerauths.c — the trigger_auths table (triggerauths.h): one row per
 * TriggerAuthentication with the document as applied. A named-document
 * table (doctable.c), as scaled_objects is.
 */
#include "store/internal.h"
#include "store/triggerauths.h"

const st_doctable_t st_triggerauth_table = {
    .table = "trigger_auths",
    .kind = "triggerauthentication",
    .one = "trigger authentication",
    .many = "trigger authentications",
};

int st_triggerauth_put(st_store_t *s, const char *name, const char *doc, int64_t now,
                       bool *created, char *err, size_t errlen)
{
    return st_doctable_put(s, &st_triggerauth_table, name, NULL, doc, now, created, NULL, err,
                           errlen);
}

int st_triggerauth_get(st_store_t *s, const char *name, char **doc, char *err, size_t errlen)
{
    return st_doctable_get(s, &st_triggerauth_table, name, doc, err, errlen);
}

int st_triggerauth_delete(st_store_t *s, const char *name, char *err, size_t errlen)
{
    return st_doctable_delete(s, &st_triggerauth_table, name, err, errlen);
}

int st_triggerauth_each(st_store_t *s, st_doc_fn fn, void *ud, char *err, size_t errlen)
{
    return st_doctable_each(s, &st_triggerauth_table, fn, ud, err, errlen);
}

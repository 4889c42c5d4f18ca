/*
 * scaled.c — the scaled_objects table (scaled.h): one row per
 * ScaledObject holding the document as applied and the Service it targets
 * (src/keda parses the document again at start, so a newer wasmfn that
 * understands more of it sees everything the user wrote). A named-document
 * table (doctable.c) with the column target.
 */
#include "store/internal.h"
#include "store/scaled.h"

const st_doctable_t st_scaled_table = {
    .table = "scaled_objects",
    .extra = "target",
    .kind = "scaledobject",
    .one = "scaled object",
    .many = "scaled objects",
};

int st_scaledobject_put(st_store_t *s, const char *name, const char *target, const char *doc,
                        int64_t now, bool *created, bool *changed, char *err, size_t errlen)
{
    return st_doctable_put(s, &st_scaled_table, name, target, doc, now, created, changed, err,
                           errlen);
}

int st_scaledobject_delete(st_store_t *s, const char *name, char *err, size_t errlen)
{
    return st_doctable_delete(s, &st_scaled_table, name, err, errlen);
}

int st_scaledobject_each(st_store_t *s, st_doc_fn fn, void *ud, char *err, size_t errlen)
{
    return st_doctable_each(s, &st_scaled_table, fn, ud, err, errlen);
}

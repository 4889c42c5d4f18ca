/*
 * errors.c — the engine's one error formatter.
 *
 * Every stage (decoder, compiler, image builder, instances, the native tier)
 * reports failure the same way: a message written into the caller's buffer
 * and `false` returned. Keeping eng_errf here, apart from any stage, lets
 * each stage use it without depending on another stage's file.
 */
#include "engine/internal.h"

#include <stdarg.h>
#include <stdio.h>

bool eng_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

/*
 * ui_files.h — the dashboard's files (ui/ in the source tree), compiled
 * into the binary: the build generates their table (scripts/embed-ui.sh,
 * mk/ui.mk) so the daemon serves /ui/ with no file of its own at run time.
 * Private to src/api/ (ui.c serves them).
 */
#ifndef WASMFN_API_UI_FILES_H
#define WASMFN_API_UI_FILES_H

#include <stddef.h>

typedef struct api_ui_file {
    const char *name;          /* "index.html": its path under ui/ */
    const unsigned char *data;
    size_t len;
} api_ui_file_t;

extern const api_ui_file_t api_ui_files[];
extern const size_t api_ui_nfiles;

#endif

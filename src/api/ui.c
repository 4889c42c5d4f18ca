/*
 * ui.c — serves the web dashboard (docs/dashboard.md) at /ui/ on the admin
 * port: the files of ui/, compiled into the binary (ui_files.h).
 *
 * The files are served without the token: they are the same for everyone
 * and hold no data. The page asks for the token in a login form, keeps it
 * in sessionStorage and sends it as an Authorization header on its calls
 * to /v1/, which check it as for any client; it never goes into a URL or
 * a cookie, so it cannot leak through a Referer, a log or CSRF. The
 * headers below keep the page from running anything but its own files
 * (no inline script, nothing from elsewhere) and from being framed.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <string.h>

#include "api/internal.h"
#include "api/ui_files.h"

static const char csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

static void respond_file(hs_req_t *r, const api_ui_file_t *f)
{
    hs_header_t h[] = {
        {"Content-Type", content_type(f->name)},
        {"Content-Security-Policy", csp},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
        /* Revalidate: a new daemon may serve new files under the same name. */
        {"Cache-Control", "no-cache"},
    };
    hs_respond(r, 200, h, sizeof h / sizeof h[0], f->data, f->len);
}

bool api_ui_handle(hs_req_t *r)
{
    const char *p = r->path;
    if (strcmp(p, "/ui") != 0 && strncmp(p, "/ui/", 4) != 0) return false;
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        hs_respond_method_not_allowed(r, "GET, HEAD");
        return true;
    }
    if (strcmp(p, "/ui") == 0) {
        hs_header_t h = {"Location", "/ui/"};
        hs_respond(r, 308, &h, 1, NULL, 0);
        return true;
    }
    const char *name = p[4] ? p + 4 : "index.html";
    for (size_t i = 0; i < api_ui_nfiles; i++) {
        if (strcmp(api_ui_files[i].name, name) == 0) {
            respond_file(r, &api_ui_files[i]);
            return true;
        }
    }
    hs_respond_errorf(r, 404, "no such dashboard file: %s", p);
    return true;
}

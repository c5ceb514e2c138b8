/* embed_glib.c: volley inside a GLib main loop, as a custom GSource.
 *
 * The source polls volley's one fd (vl_loop_fd) for input; prepare() gives
 * GLib volley's next-timeout hint, check() says whether the fd is ready or
 * the hint has passed, dispatch() runs vl_loop_run_once(loop, 0).  GLib asks
 * prepare() again before every wait, so a deadline that moved (a fetch
 * started from the host's code) is always seen.  A GLib timeout is the
 * host's own work, ticking every --period ms.
 *
 *   embed_glib [-c N] [--cacert FILE] [-k] [--period MS] [-i FILE] URL...
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <glib.h>

#include "example.h"

struct vl_source {
    GSource base;
    vl_loop *vl;
    struct ex *x;
    gpointer tag;            /* from g_source_add_unix_fd */
    int err;
};

static gboolean vs_prepare(GSource *s, gint *timeout)
{
    struct vl_source *vs = (struct vl_source *)s;
    *timeout = vl_loop_timeout_ms(vs->vl);
    return *timeout == 0;
}

static gboolean vs_check(GSource *s)
{
    struct vl_source *vs = (struct vl_source *)s;
    return g_source_query_unix_fd(s, vs->tag) != 0 || vl_loop_timeout_ms(vs->vl) == 0;
}

static gboolean vs_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
    struct vl_source *vs = (struct vl_source *)s;
    (void)cb;
    (void)data;
    uint64_t t0 = ex_now_us();
    int rc = vl_loop_run_once(vs->vl, 0);
    ex_held(vs->x, t0);
    if (rc < 0)
        vs->err = rc;
    return rc < 0 ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static GSourceFuncs vs_funcs = {vs_prepare, vs_check, vs_dispatch, NULL, NULL, NULL};

struct host {
    struct ex *x;
    GMainContext *ctx;
    int done;
};

static gboolean on_tick(gpointer data)
{
    struct host *h = data;
    ex_tick(h->x, ex_now_us());
    return G_SOURCE_CONTINUE;
}

static void on_done(vl_loop *loop, void *data)
{
    (void)loop;
    ((struct host *)data)->done = 1;
}

static int run(struct ex *x, vl_loop *vl, vl_client *client)
{
    struct host h = {.x = x, .ctx = g_main_context_new()};
    GSource *src = g_source_new(&vs_funcs, sizeof(struct vl_source));
    struct vl_source *vs = (struct vl_source *)src;
    vs->vl = vl;
    vs->x = x;
    vs->tag = g_source_add_unix_fd(src, vl_loop_fd(vl), G_IO_IN);
    g_source_attach(src, h.ctx);
    GSource *tick = g_timeout_source_new((guint)x->period_ms);
    g_source_set_callback(tick, on_tick, &h, NULL);
    g_source_attach(tick, h.ctx);
    vl_gather_op *g;
    int rc = vl_gather_start(client, x->window, ex_next, x, ex_result, x, on_done, &h, &g);
    x->due_us = ex_now_us() + (uint64_t)x->period_ms * 1000u;
    while (rc == 0 && !h.done && !vs->err)
        g_main_context_iteration(h.ctx, TRUE);
    if (rc == 0) {
        rc = vs->err;
        vl_gather_free(g);
    }
    g_source_destroy(tick);
    g_source_unref(tick);
    g_source_destroy(src);
    g_source_unref(src);
    g_main_context_unref(h.ctx);
    return rc;
}

int main(int argc, char **argv)
{
    return ex_main("embed_glib", argc, argv, ex_count_fds(), run);
}

/* records.c: --records FILE and --resume.  The records file is the run's
 * journal: a header line, then one JSON record per line, each written with
 * one write(2) on an O_APPEND fd as it completes, so a SIGKILL at any moment
 * leaves whole lines and at most one torn last line.  --resume reads the
 * file back (with jansson), cuts a torn last line away, refuses a file that
 * was written for another input, and remembers which indexes already have
 * an ok record (the LAST record of an index is its final one).
 *
 * The header, the first line, is not a record (it has no "index"):
 *   {"volley_records":1,"input":{"args":N,"size":S|null,"head_bytes":H,
 *    "sha256_head":"..."}}
 * sha256_head covers the positional URLs, --input-format and the first
 * RECORDS_HEAD_BYTES of -i; size is -i's size when it is a regular file. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define RECORDS_HEAD_BYTES 65536
#define OKSET_PAGE_BITS 19               /* 64 KiB of bits per page */
#define OKSET_INDEX_MAX (1LL << 40)

struct records {
    int fd;
    unsigned char **pages;               /* ok bits by index, pages made on demand */
    size_t npages;
    uint64_t ok_before;                  /* indexes whose last record is ok */
};

/* ----------------------------------------------------------- the ok set */
static int okset_put(struct records *r, int64_t index, int ok)
{
    if (index < 0 || index >= OKSET_INDEX_MAX)
        return 0; /* not an index this input can have */
    size_t page = (size_t)(index >> OKSET_PAGE_BITS);
    size_t bit = (size_t)(index & ((1 << OKSET_PAGE_BITS) - 1));
    if (page >= r->npages) {
        if (!ok)
            return 0;
        size_t n = page + 1 + r->npages / 2;
        unsigned char **p = realloc(r->pages, n * sizeof(*p));
        if (!p)
            return -1;
        memset(p + r->npages, 0, (n - r->npages) * sizeof(*p));
        r->pages = p;
        r->npages = n;
    }
    if (!r->pages[page]) {
        if (!ok)
            return 0;
        if (!(r->pages[page] = calloc(1, (size_t)1 << (OKSET_PAGE_BITS - 3))))
            return -1;
    }
    unsigned char *byte = &r->pages[page][bit >> 3], mask = (unsigned char)(1u << (bit & 7));
    if (ok && !(*byte & mask))
        r->ok_before++;
    else if (!ok && (*byte & mask))
        r->ok_before--;
    *byte = ok ? (*byte | mask) : (*byte & (unsigned char)~mask);
    return 0;
}

int records_done(const struct records *r, int64_t index)
{
    if (!r || index < 0 || index >= OKSET_INDEX_MAX)
        return 0;
    size_t page = (size_t)(index >> OKSET_PAGE_BITS);
    size_t bit = (size_t)(index & ((1 << OKSET_PAGE_BITS) - 1));
    return page < r->npages && r->pages[page] && (r->pages[page][bit >> 3] >> (bit & 7)) & 1;
}

uint64_t records_ok_before(const struct records *r) { return r ? r->ok_before : 0; }

/* -------------------------------------------------------- the fingerprint */
/* A pipe's first bytes are read before the run starts (to hash them); the
 * reader thread then gets them back through this stream, then the rest. */
struct replay {
    char *buf;
    size_t len, pos;
    int fd;
};

static ssize_t replay_read(void *cookie, char *out, size_t size)
{
    struct replay *rp = cookie;
    if (rp->pos < rp->len) {
        size_t n = rp->len - rp->pos < size ? rp->len - rp->pos : size;
        memcpy(out, rp->buf + rp->pos, n);
        rp->pos += n;
        return (ssize_t)n;
    }
    ssize_t n;
    do
        n = read(rp->fd, out, size);
    while (n < 0 && errno == EINTR);
    return n;
}

static int replay_close(void *cookie)
{
    struct replay *rp = cookie;
    free(rp->buf);
    free(rp);
    return 0;
}

/* Up to RECORDS_HEAD_BYTES of fd (from offset 0 when seekable). */
static ssize_t read_head(int fd, int seekable, char *buf)
{
    size_t got = 0;
    while (got < RECORDS_HEAD_BYTES) {
        ssize_t n = seekable ? pread(fd, buf + got, RECORDS_HEAD_BYTES - got, (off_t)got)
                             : read(fd, buf + got, RECORDS_HEAD_BYTES - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static const char *input_head(struct cli_opts *o, char *buf, ssize_t *len, long long *size)
{
    *len = 0;
    *size = -1;
    if (!o->input)
        return NULL;
    int is_stdin = strcmp(o->input, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(o->input, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return "cannot open the input";
    int regular = S_ISREG(st.st_mode);
    if (regular)
        *size = (long long)st.st_size;
    *len = read_head(fd, regular, buf);
    if (!is_stdin)
        close(fd);
    if (*len < 0)
        return "cannot read the input";
    if (!regular) {
        struct replay *rp = calloc(1, sizeof(*rp));
        cookie_io_functions_t io = {.read = replay_read, .close = replay_close};
        if (!rp || !(rp->buf = malloc((size_t)*len + 1))) {
            free(rp);
            return "out of memory";
        }
        memcpy(rp->buf, buf, (size_t)*len);
        rp->len = (size_t)*len;
        rp->fd = fd;
        if (!(o->input_stream = fopencookie(rp, "r", io))) {
            replay_close(rp);
            return "out of memory";
        }
    }
    return NULL;
}

int records_fingerprint(struct cli_opts *o, struct records_fp *fp, char *err, size_t errlen)
{
    char *buf = malloc(RECORDS_HEAD_BYTES);
    unsigned char sum[32];
    ssize_t len;
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *why = input_head(o, buf, &len, &fp->size);
    if (why) {
        snprintf(err, errlen, "%s %s: %s", why, o->input, strerror(errno));
        free(buf);
        return -1;
    }
    mbedtls_sha256_context c;
    mbedtls_sha256_init(&c);
    mbedtls_sha256_starts_ret(&c, 0);
    const char *fmt = o->input_json ? "volley-input json\n" : "volley-input urls\n";
    mbedtls_sha256_update_ret(&c, (const unsigned char *)fmt, strlen(fmt));
    for (int i = 0; i < o->nurls; i++) {
        mbedtls_sha256_update_ret(&c, (const unsigned char *)o->urls[i], strlen(o->urls[i]));
        mbedtls_sha256_update_ret(&c, (const unsigned char *)"\n", 1);
    }
    mbedtls_sha256_update_ret(&c, (const unsigned char *)buf, (size_t)len);
    mbedtls_sha256_finish_ret(&c, sum);
    mbedtls_sha256_free(&c);
    free(buf);
    for (int i = 0; i < 32; i++)
        snprintf(fp->sha256_head + 2 * i, 3, "%02x", sum[i]);
    fp->head_bytes = (long long)len;
    fp->args = o->nurls;
    return 0;
}

/* --------------------------------------------------------- the file */
static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int records_write(struct records *r, const char *line, size_t len)
{
    return write_all(r->fd, line, len);
}

static int write_header(struct records *r, const struct records_fp *fp)
{
    char line[512];
    char size[32] = "null";
    if (fp->size >= 0)
        snprintf(size, sizeof(size), "%lld", fp->size);
    int n = snprintf(line, sizeof(line),
                     "{\"volley_records\":1,\"input\":{\"args\":%d,\"size\":%s,\"head_bytes\":%lld,"
                     "\"sha256_head\":\"%s\"}}\n",
                     fp->args, size, fp->head_bytes, fp->sha256_head);
    return write_all(r->fd, line, (size_t)n);
}

/* The header's fingerprint against this input's; NULL when they match. */
static const char *header_differs(json_t *h, const struct records_fp *fp, char *why, size_t len)
{
    json_t *in = json_object_get(h, "input");
    const char *sha = json_string_value(json_object_get(in, "sha256_head"));
    json_t *size = json_object_get(in, "size");
    long long fsize = json_is_integer(size) ? json_integer_value(size) : -1;
    long long args = json_integer_value(json_object_get(in, "args"));
    if (sha && strcmp(sha, fp->sha256_head) == 0 && fsize == fp->size && args == fp->args)
        return NULL;
    snprintf(why, len, "file: %lld URL arguments, size %lld, sha256_head %.12s...; "
             "now: %d, size %lld, sha256_head %.12s...", args, fsize, sha ? sha : "none",
             fp->args, fp->size, fp->sha256_head);
    return why;
}

/* One parsed line of the file: the header (the first), a record, or
 * anything else (ignored).  NULL, or why the file cannot be resumed. */
static const char *take_line(struct records *r, json_t *j, int first,
                             const struct records_fp *fp, char *why, size_t whylen)
{
    if (first) {
        if (!json_is_object(j) || !json_object_get(j, "volley_records"))
            return "it does not start with a volley records header";
        return header_differs(j, fp, why, whylen);
    }
    if (json_is_object(j) && json_is_integer(json_object_get(j, "index"))) {
        int ok = json_is_true(json_object_get(j, "ok"));
        if (okset_put(r, json_integer_value(json_object_get(j, "index")), ok) < 0)
            return "out of memory";
    }
    return NULL;
}

/* Read the file: header, records, and a torn last line, cut away. */
static int load(struct records *r, const char *path, const struct records_fp *fp, int *empty,
                char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *line = NULL, why[256];
    size_t cap = 0;
    ssize_t n;
    off_t good = 0, at = 0;
    int rc = 0, lines = 0;
    if (!f)
        return 0; /* nothing yet */
    while ((n = getline(&line, &cap, f)) > 0) {
        at += n;
        int whole = line[n - 1] == '\n';
        json_t *j = whole ? json_loads(line, 0, NULL) : NULL;
        if (!j) {
            int c = fgetc(f);
            if (c == EOF)
                break; /* the torn last line: cut away below */
            ungetc(c, f);
            fprintf(stderr, "volley: resume: %s: ignoring line %d, not JSON\n", path, lines + 1);
            good = at;
            lines++;
            continue;
        }
        const char *bad = take_line(r, j, lines == 0, fp, why, sizeof(why));
        json_decref(j);
        if (bad) {
            if (bad == why)
                snprintf(err, errlen, "resume: records file was written for another input (%s)",
                         why);
            else
                snprintf(err, errlen, "resume: %s: %s", path, bad);
            rc = -1;
            break;
        }
        good = at;
        lines++;
    }
    free(line);
    fclose(f);
    if (rc == 0 && truncate(path, good) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "resume: cannot truncate %s: %s", path, strerror(errno));
        rc = -1;
    }
    *empty = lines == 0;
    return rc;
}

int records_open(const struct cli_opts *o, const struct records_fp *fp, struct records **out,
                 char *err, size_t errlen)
{
    struct records *r = calloc(1, sizeof(*r));
    struct stat st;
    int empty = 1;
    *out = NULL;
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->fd = -1;
    if (o->resume) {
        if (load(r, o->records, fp, &empty, err, errlen) < 0)
            goto fail;
    } else if (stat(o->records, &st) == 0 && st.st_size > 0) {
        snprintf(err, errlen, "--records %s: the file exists (use --resume to go on with it)",
                 o->records);
        goto fail;
    }
    r->fd = open(o->records, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (r->fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", o->records, strerror(errno));
        goto fail;
    }
    if (empty && write_header(r, fp) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", o->records, strerror(errno));
        goto fail;
    }
    *out = r;
    return 0;
fail:
    records_close(r);
    return -1;
}

void records_close(struct records *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    for (size_t i = 0; i < r->npages; i++)
        free(r->pages[i]);
    free(r->pages);
    free(r);
}

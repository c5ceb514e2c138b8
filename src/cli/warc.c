/* warc.c: --warc FILE.  A sink for the raw-bytes tap: each exchange (one
 * attempt or redirect hop of a fetch) is spooled as it happens and written
 * as a request record and a response record when it ends (WARC 1.1,
 * ISO 28500:2017; the layout follows what crawlers and warcio write).
 *
 * Why a spool: a record's header carries Content-Length and the digests,
 * so it can only be written once the whole block is known.  Each exchange
 * keeps its first SPOOL_MEM_BYTES in memory and spills the rest to an
 * unnamed temp file in the WARC file's directory (O_TMPFILE, or mkstemp
 * and unlink), so memory stays bounded whatever the body size; at the end
 * the block is copied from there (copy_file_range for plain .warc).
 *
 * What a record holds: the request exactly as written (head and body), the
 * response exactly as the parser took it (status line, headers, body before
 * content decoding, chunked framing as received).  WARC-Block-Digest covers
 * the block; WARC-Payload-Digest the body with the chunked framing removed
 * but its content coding kept (what warcio computes).  An exchange that
 * received no response byte writes nothing; one that broke off writes what
 * it received, with WARC-Truncated and no payload digest.
 *
 * Knows nothing of sockets or HTTP parsing: only the tap's events. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nettle/sha1.h>
#include <zlib.h>

#include "warc.h"

/* SHA-1 from nettle, not mbedTLS: nettle uses the CPU's SHA instructions
 * (787 vs 288 MB/s measured here), and every archived byte is hashed twice
 * (block and payload digest). */
#define SHA1_STARTS(c) sha1_init(c)
#define SHA1_UPDATE(c, p, n) sha1_update((c), (n), (p))
#define SHA1_FINISH(c, d) sha1_digest((c), SHA1_DIGEST_SIZE, (d))

#define SPOOL_MEM_BYTES (64 * 1024)  /* per direction, before spilling to a temp file */
#define OUT_BUF_BYTES (64 * 1024)    /* the writer's output buffer */
#define COPY_BUF_BYTES (64 * 1024)   /* reading a spool file back */
#define WARC_GZIP_LEVEL 1            /* zlib level: see README (bodies are mostly compressed) */
/* After this much of a record, if deflate saved under a tenth, the rest of
 * the record is stored (level 0): already-compressed bodies (images, video,
 * gzip) then cost a copy, not deflate's search (~10x slower, measured). */
#define STORE_PROBE_BYTES (64 * 1024)
#define ROLL_MAX_FILES 99999

/* ----------------------------------------------------------------- writer */

struct warc {
    pthread_mutex_t lock;        /* whole records, one thread at a time */
    char *path;                  /* as given */
    char *dir;                   /* for the spool files */
    uint64_t max_bytes;          /* --warc-max-size (0 = one file) */
    int seq;                     /* 0: path itself; n: PATH-0000n */
    int gz;
    int fd;
    uint64_t file_bytes;         /* bytes in the current file */
    int records_here;            /* exchanges written to the current file */
    char info_id[64];            /* the current file's warcinfo record id */
    z_stream z;
    int z_ready;
    int z_level;                 /* the current record's level: WARC_GZIP_LEVEL or 0 */
    char *obuf;
    size_t olen;
    int failed;                  /* a write failed: said once, warc_close returns -1 */
    int opening;                 /* in warc_open: failures go to msg, not to stderr */
    char msg[512];
};

static void warc_fail(struct warc *w, const char *what, int e)
{
    if (!w->failed) {
        snprintf(w->msg, sizeof(w->msg), "--warc: %s %s: %s", what, w->path, strerror(e));
        if (!w->opening)
            fprintf(stderr, "volley: %s\n", w->msg);
    }
    w->failed = 1;
}

static int write_all_fd(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_fd(struct warc *w, const char *p, size_t len)
{
    if (write_all_fd(w->fd, p, len) < 0) {
        warc_fail(w, "cannot write", errno);
        return -1;
    }
    w->file_bytes += len;
    return 0;
}

static int flush_out(struct warc *w)
{
    int rc = write_fd(w, w->obuf, w->olen);
    w->olen = 0;
    return rc;
}

/* Deflate what z holds into obuf, flushing it as it fills. */
static int deflate_run(struct warc *w, int flush)
{
    for (;;) {
        w->z.next_out = (Bytef *)w->obuf + w->olen;
        w->z.avail_out = (uInt)(OUT_BUF_BYTES - w->olen);
        int rc = deflate(&w->z, flush);
        w->olen = OUT_BUF_BYTES - w->z.avail_out;
        if (rc == Z_STREAM_ERROR) {
            warc_fail(w, "gzip failed for", EIO);
            return -1;
        }
        if (w->olen == OUT_BUF_BYTES && flush_out(w) < 0)
            return -1;
        if (flush == Z_FINISH ? rc == Z_STREAM_END : w->z.avail_in == 0)
            return 0;
    }
}

/* Store the rest of this record: flush what is pending to a block
 * boundary, then switch to level 0 (zlib.h, deflateParams). */
static int store_rest(struct warc *w)
{
    w->z.avail_in = 0;
    if (deflate_run(w, Z_BLOCK) < 0)
        return -1;
    for (int tries = 0; tries < 4; tries++) {
        w->z.next_out = (Bytef *)w->obuf + w->olen;
        w->z.avail_out = (uInt)(OUT_BUF_BYTES - w->olen);
        int rc = deflateParams(&w->z, 0, Z_DEFAULT_STRATEGY);
        w->olen = OUT_BUF_BYTES - w->z.avail_out;
        if (rc == Z_OK) {
            w->z_level = 0;
            return 0;
        }
        if (rc != Z_BUF_ERROR || flush_out(w) < 0)
            break;
    }
    w->z_level = -1; /* keep compressing: nothing is lost but speed */
    return w->failed ? -1 : 0;
}

static int out_write(struct warc *w, const char *p, size_t len)
{
    if (w->gz) {
        if (w->z_level > 0 && w->z.total_in >= STORE_PROBE_BYTES &&
            w->z.total_out > w->z.total_in / 10 * 9 && store_rest(w) < 0)
            return -1;
        w->z.next_in = (Bytef *)p;
        w->z.avail_in = (uInt)len;
        return deflate_run(w, Z_NO_FLUSH);
    }
    if (w->olen + len > OUT_BUF_BYTES && flush_out(w) < 0)
        return -1;
    if (len >= OUT_BUF_BYTES)
        return write_fd(w, p, len);
    memcpy(w->obuf + w->olen, p, len);
    w->olen += len;
    return 0;
}

/* Each record is its own gzip member, so a reader can seek to any record
 * (as archives expect, ISO 28500 Annex D). */
static void record_begin(struct warc *w)
{
    if (!w->gz)
        return;
    deflateReset(&w->z);
    /* after a reset nothing is pending: the change needs no output */
    if (w->z_level != WARC_GZIP_LEVEL &&
        deflateParams(&w->z, WARC_GZIP_LEVEL, Z_DEFAULT_STRATEGY) == Z_OK)
        w->z_level = WARC_GZIP_LEVEL;
}

static int record_end(struct warc *w)
{
    if (out_write(w, "\r\n\r\n", 4) < 0)
        return -1;
    if (w->gz && deflate_run(w, Z_FINISH) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------- formatting */

/* n random bytes from getrandom(2). */
static void random_bytes(unsigned char *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(b + got, n - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) { /* no entropy source at all: time and address, still unique here */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uintptr_t)b;
            for (; got < n; got++, v = v * 6364136223846793005u + 1442695040888963407u)
                b[got] = (unsigned char)(v >> 56);
            break;
        }
        got += (size_t)k;
    }
}

/* A version 4 UUID from 16 random bytes, as a WARC-Record-ID. */
static void format_uuid(unsigned char *b, char *out, size_t len)
{
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* RFC 9562 version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
    snprintf(out, len,
             "<urn:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x>",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

/* WARC 1.1 §5.4: W3C-ISO8601, UTC, here with microseconds. */
static void warc_date(char *out, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char day[32];
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%.20s.%06dZ", day, (int)(ts.tv_nsec / 1000) % 1000000);
}

/* "sha1:" and RFC 4648 base32 of the 20-byte digest (32 characters, no
 * padding needed), as archives write it. */
static void digest_str(struct sha1_ctx *sha, char *out, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char d[20];
    SHA1_FINISH(sha, d);
    char s[40] = "sha1:";
    size_t o = 5;
    for (size_t bit = 0; bit < 160; bit += 5) {
        size_t i = bit / 8, sh = bit % 8;
        unsigned v = (unsigned)d[i] << 8 | (i + 1 < 20 ? d[i + 1] : 0);
        s[o++] = alphabet[(v >> (11 - sh)) & 31];
    }
    s[o] = '\0';
    snprintf(out, len, "%s", s);
}

/* ------------------------------------------------------------------ files */

/* PATH, or for seq > 0 "BASE-0000N.EXT" with EXT ".warc.gz", ".warc" or
 * nothing, as wget and Heritrix number theirs. */
static char *file_name(const char *path, int seq)
{
    if (seq == 0)
        return strdup(path);
    static const char *const exts[] = {".warc.gz", ".warc", ".gz"};
    size_t plen = strlen(path), blen = plen;
    const char *ext = "";
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        size_t el = strlen(exts[i]);
        if (plen > el && strcmp(path + plen - el, exts[i]) == 0) {
            ext = exts[i];
            blen = plen - el;
            break;
        }
    }
    size_t n = plen + 8;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%.*s-%05d%s", (int)blen, path, seq, ext);
    return s;
}

static int write_warcinfo(struct warc *w, const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    char body[512], head[1024], date[40];
    int blen = snprintf(body, sizeof(body),
                        "software: volley/%s\r\n"
                        "format: WARC File Format 1.1\r\n"
                        "conformsTo: "
                        "http://iipc.github.io/warc-specifications/specifications/warc-format/"
                        "warc-1.1/\r\n",
                        vl_version());
    unsigned char rnd[16];
    random_bytes(rnd, sizeof(rnd));
    format_uuid(rnd, w->info_id, sizeof(w->info_id));
    warc_date(date, sizeof(date));
    int hlen = snprintf(head, sizeof(head),
                        "WARC/1.1\r\n"
                        "WARC-Type: warcinfo\r\n"
                        "WARC-Record-ID: %s\r\n"
                        "WARC-Date: %s\r\n"
                        "WARC-Filename: %.300s\r\n"
                        "Content-Type: application/warc-fields\r\n"
                        "Content-Length: %d\r\n\r\n",
                        w->info_id, date, base, blen);
    record_begin(w);
    if (out_write(w, head, (size_t)hlen) < 0 || out_write(w, body, (size_t)blen) < 0 ||
        record_end(w) < 0)
        return -1;
    return flush_out(w);
}

/* Open file seq for appending and start it with its warcinfo. */
static int open_file(struct warc *w, int seq, char *err, size_t errlen)
{
    char *name = file_name(w->path, seq);
    if (!name) {
        snprintf(err, errlen, "--warc: out of memory");
        return -1;
    }
    /* not O_APPEND: copy_file_range refuses such a target (EBADF); every
     * write happens under the writer's lock, at the end it seeks to here */
    int fd = open(name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || lseek(fd, 0, SEEK_END) < 0) {
        snprintf(err, errlen, "--warc: cannot open %s: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(name);
        return -1;
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    w->seq = seq;
    w->file_bytes = (uint64_t)st.st_size;
    w->records_here = 0;
    int rc = write_warcinfo(w, name);
    free(name);
    return rc;
}

int warc_open(const char *path, uint64_t max_bytes, struct warc **out, char *err, size_t errlen)
{
    struct warc *w = calloc(1, sizeof(*w));
    *out = NULL;
    if (!w || !(w->path = strdup(path)) || !(w->dir = strdup(path)) ||
        !(w->obuf = malloc(OUT_BUF_BYTES))) {
        snprintf(err, errlen, "--warc: out of memory");
        goto fail;
    }
    char *slash = strrchr(w->dir, '/');
    if (!slash)
        strcpy(w->dir, ".");
    else if (slash == w->dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    pthread_mutex_init(&w->lock, NULL);
    w->fd = -1;
    w->max_bytes = max_bytes;
    size_t plen = strlen(path);
    w->gz = plen > 3 && strcmp(path + plen - 3, ".gz") == 0;
    if (w->gz) {
        if (deflateInit2(&w->z, WARC_GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK) {
            snprintf(err, errlen, "--warc: cannot start zlib");
            goto fail;
        }
        w->z_ready = 1;
        w->z_level = WARC_GZIP_LEVEL;
    }
    /* a run resumed with rolled files: go on with the highest one */
    int seq = 0;
    while (max_bytes && seq < ROLL_MAX_FILES) {
        char *name = file_name(path, seq + 1);
        struct stat st;
        int exists = name && stat(name, &st) == 0;
        free(name);
        if (!exists)
            break;
        seq++;
    }
    w->opening = 1;
    if (open_file(w, seq, err, errlen) < 0) {
        if (w->msg[0])
            snprintf(err, errlen, "%s", w->msg);
        goto fail;
    }
    w->opening = 0;
    *out = w;
    return 0;
fail:
    if (w) {
        w->failed = 1;
        warc_close(w);
    }
    return -1;
}

int warc_close(struct warc *w)
{
    if (!w)
        return 0;
    int failed = w->failed;
    if (w->fd >= 0 && close(w->fd) < 0 && !failed) {
        warc_fail(w, "cannot close", errno);
        failed = 1;
    }
    if (w->z_ready)
        deflateEnd(&w->z);
    if (w->dir)
        pthread_mutex_destroy(&w->lock);
    free(w->obuf);
    free(w->dir);
    free(w->path);
    free(w);
    return failed ? -1 : 0;
}

/* ---------------------------------------------------------------- spools */

struct spool {
    char *buf;                   /* the first SPOOL_MEM_BYTES, or the unflushed tail */
    size_t len;
    int fd;                      /* the temp file once it spilled, else -1 */
    uint64_t total;
    struct sha1_ctx block;  /* WARC-Block-Digest */
    struct sha1_ctx payload;/* WARC-Payload-Digest */
    int err;                     /* errno of a failed spill */
};

struct warc_exchange {
    struct warc *w;
    int open;
    char *url;
    char ip[64];
    char date[40];
    int head_match;              /* request: how much of CRLFCRLF was seen (4: in the body) */
    struct spool req, resp;
};

static void spool_start(struct spool *s)
{
    s->len = 0;
    s->fd = -1;
    s->total = 0;
    s->err = 0;
    SHA1_STARTS(&s->block);
    SHA1_STARTS(&s->payload);
}

static void spool_end(struct spool *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->buf);
    s->buf = NULL;
}

/* An unnamed file beside the WARC file: the same file system, so space is
 * accounted where the archive goes, and nothing is left behind by a crash. */
static int spool_file(const char *dir)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    size_t n = strlen(dir) + 32;
    char *name = malloc(n);
    if (!name)
        return -1;
    snprintf(name, n, "%s/.volley-warc-XXXXXX", dir);
    fd = mkstemp(name);
    if (fd >= 0) {
        unlink(name);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    free(name);
    return fd;
}

static int spool_flush(struct spool *s, const char *dir)
{
    if (s->fd < 0 && (s->fd = spool_file(dir)) < 0)
        return -1;
    if (write_all_fd(s->fd, s->buf, s->len) < 0)
        return -1;
    s->len = 0;
    return 0;
}

static void spool_add(struct spool *s, const char *dir, const char *p, size_t len)
{
    if (s->err)
        return;
    if (!s->buf && !(s->buf = malloc(SPOOL_MEM_BYTES))) {
        s->err = ENOMEM;
        return;
    }
    SHA1_UPDATE(&s->block, (const unsigned char *)p, len);
    s->total += len;
    while (len) {
        if (s->len == SPOOL_MEM_BYTES && spool_flush(s, dir) < 0) {
            s->err = errno ? errno : EIO;
            return;
        }
        size_t k = SPOOL_MEM_BYTES - s->len < len ? SPOOL_MEM_BYTES - s->len : len;
        memcpy(s->buf + s->len, p, k);
        s->len += k;
        p += k;
        len -= k;
    }
}

/* The block: from the temp file (flushed first), then what is in memory. */
static int spool_copy(struct warc *w, struct spool *s)
{
    if (s->fd >= 0) {
        if (s->len && spool_flush(s, w->dir) < 0) {
            warc_fail(w, "cannot spool for", errno);
            return -1;
        }
        off_t off = 0;
        uint64_t left = s->total;
        if (!w->gz) {
            if (flush_out(w) < 0)
                return -1;
            while (left) { /* the kernel copies: no pass through user space */
                ssize_t n = copy_file_range(s->fd, &off, w->fd, NULL, left, 0);
                if (n <= 0)
                    break; /* not supported here (or a short file): copy by hand */
                left -= (uint64_t)n;
                w->file_bytes += (uint64_t)n;
            }
        }
        char *cbuf = left ? malloc(COPY_BUF_BYTES) : NULL;
        if (left && !cbuf) {
            warc_fail(w, "out of memory for", ENOMEM);
            return -1;
        }
        while (left) {
            size_t want = left < COPY_BUF_BYTES ? (size_t)left : COPY_BUF_BYTES;
            ssize_t n = pread(s->fd, cbuf, want, off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0 || out_write(w, cbuf, (size_t)n) < 0) {
                if (n <= 0)
                    warc_fail(w, "cannot read the spool of", n < 0 ? errno : EIO);
                free(cbuf);
                return -1;
            }
            off += n;
            left -= (uint64_t)n;
        }
        free(cbuf);
        return 0;
    }
    return out_write(w, s->buf, s->len);
}

/* ---------------------------------------------------------------- records */

/* WARC-Truncated (WARC 1.1 §5.13) for a response that broke off. */
static const char *truncated_reason(int err)
{
    switch (-err) {
    case VL_ETIMEOUT: return "time";
    case VL_ETOOBIG: return "length";
    case VL_EIO:
    case VL_ETLS: return "disconnect";
    default: return "unspecified";
    }
}

static int write_record(struct warc *w, struct warc_exchange *x, const char *type,
                        const char *id, const char *other, struct spool *s, int whole, int err)
{
    char block[64], payload[96] = "", trunc[64] = "";
    digest_str(&s->block, block, sizeof(block));
    if (whole) {
        char d[64];
        digest_str(&s->payload, d, sizeof(d));
        snprintf(payload, sizeof(payload), "WARC-Payload-Digest: %s\r\n", d);
    } else {
        snprintf(trunc, sizeof(trunc), "WARC-Truncated: %s\r\n", truncated_reason(err));
    }
    size_t cap = strlen(x->url) + 1024;
    char *head = malloc(cap);
    if (!head) {
        warc_fail(w, "out of memory for", ENOMEM);
        return -1;
    }
    int hlen = snprintf(head, cap,
                        "WARC/1.1\r\n"
                        "WARC-Type: %s\r\n"
                        "WARC-Record-ID: %s\r\n"
                        "WARC-Date: %s\r\n"
                        "WARC-Target-URI: %s\r\n"
                        "WARC-IP-Address: %s\r\n"
                        "WARC-Concurrent-To: %s\r\n"
                        "WARC-Warcinfo-ID: %s\r\n"
                        "WARC-Block-Digest: %s\r\n"
                        "%s%s"
                        "Content-Type: application/http;msgtype=%s\r\n"
                        "Content-Length: %llu\r\n\r\n",
                        type, id, x->date, x->url, x->ip, other, w->info_id, block, payload,
                        trunc, type, (unsigned long long)s->total);
    record_begin(w);
    int rc = out_write(w, head, (size_t)hlen);
    free(head);
    if (rc < 0 || spool_copy(w, s) < 0)
        return -1;
    return record_end(w);
}

/* Both records of an exchange, whole and adjacent, under the lock; a file
 * that has reached --warc-max-size gives way to the next one first. */
static void write_exchange(struct warc_exchange *x, const vl_wire_event *ev)
{
    struct warc *w = x->w;
    char req_id[64], resp_id[64];
    if (x->req.err || x->resp.err) {
        pthread_mutex_lock(&w->lock);
        warc_fail(w, "cannot spool an exchange for", x->req.err ? x->req.err : x->resp.err);
        pthread_mutex_unlock(&w->lock);
        return;
    }
    unsigned char rnd[32];
    random_bytes(rnd, sizeof(rnd)); /* one getrandom(2) for both ids */
    format_uuid(rnd, req_id, sizeof(req_id));
    format_uuid(rnd + 16, resp_id, sizeof(resp_id));
    pthread_mutex_lock(&w->lock);
    if (w->max_bytes && w->records_here > 0 && w->file_bytes >= w->max_bytes) {
        char err[512];
        if (w->seq >= ROLL_MAX_FILES || open_file(w, w->seq + 1, err, sizeof(err)) < 0) {
            if (!w->failed)
                fprintf(stderr, "volley: %s\n", w->seq >= ROLL_MAX_FILES ?
                        "--warc: too many files" : err);
            w->failed = 1;
        }
    }
    /* one write(2) for both when they fit the output buffer */
    if (!w->failed && write_record(w, x, "request", req_id, resp_id, &x->req, 1, 0) == 0 &&
        write_record(w, x, "response", resp_id, req_id, &x->resp, ev->complete, ev->err) == 0 &&
        flush_out(w) == 0)
        w->records_here++;
    pthread_mutex_unlock(&w->lock);
}

/* "1.2.3.4:80" -> "1.2.3.4"; "[::1]:80" -> "::1". */
static void peer_ip(const char *peer, char *out, size_t len)
{
    const char *end = strrchr(peer, ':');
    size_t n = end ? (size_t)(end - peer) : strlen(peer);
    if (n >= 2 && peer[0] == '[' && peer[n - 1] == ']') {
        peer++;
        n -= 2;
    }
    snprintf(out, len, "%.*s", (int)n, peer);
}

/* The URL as a header value: no control bytes or spaces (percent-encoded),
 * and no "user:password@": an archive names the resource, not the login. */
static char *header_url(const char *url)
{
    size_t n = strlen(url);
    char *s = malloc(3 * n + 1), *o = s;
    if (!s)
        return NULL;
    const char *skip_from = NULL, *skip_to = NULL, *auth = strstr(url, "://");
    if (auth) {
        auth += 3;
        size_t alen = strcspn(auth, "/?#");
        for (const char *q = auth; q < auth + alen; q++)
            if (*q == '@')
                skip_from = auth, skip_to = q + 1;
    }
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if ((const char *)p == skip_from && !*(p = (const unsigned char *)skip_to))
            break;
        if (*p <= 0x20 || *p >= 0x7f)
            o += sprintf(o, "%%%02X", *p);
        else
            *o++ = (char)*p;
    }
    *o = '\0';
    return s;
}

/* The request's body starts after its head's empty line. */
static void request_payload(struct warc_exchange *x, const char *p, size_t len)
{
    static const char crlf2[] = "\r\n\r\n";
    size_t i = 0;
    while (x->head_match < 4 && i < len) {
        char c = p[i++];
        x->head_match = c == crlf2[x->head_match] ? x->head_match + 1 : c == '\r';
    }
    if (i < len)
        SHA1_UPDATE(&x->req.payload, (const unsigned char *)p + i, len - i);
}

static void exchange_end(struct warc_exchange *x)
{
    spool_end(&x->req);
    spool_end(&x->resp);
    free(x->url);
    x->url = NULL;
    x->open = 0;
}

void warc_on_wire(void *data, const vl_wire_event *ev)
{
    struct warc_exchange *x = data;
    switch (ev->type) {
    case VL_WIRE_START:
        if (x->open)
            exchange_end(x);
        x->open = 1;
        x->url = header_url(ev->url ? ev->url : "");
        peer_ip(ev->peer ? ev->peer : "", x->ip, sizeof(x->ip));
        warc_date(x->date, sizeof(x->date));
        x->head_match = 0;
        spool_start(&x->req);
        spool_start(&x->resp);
        if (!x->url)
            x->req.err = ENOMEM;
        break;
    case VL_WIRE_SENT:
        if (!x->open)
            break;
        spool_add(&x->req, x->w->dir, ev->data, ev->len);
        request_payload(x, ev->data, ev->len);
        break;
    case VL_WIRE_RECV:
        if (x->open)
            spool_add(&x->resp, x->w->dir, ev->data, ev->len);
        break;
    case VL_WIRE_PAYLOAD:
        if (x->open)
            SHA1_UPDATE(&x->resp.payload, (const unsigned char *)ev->data, ev->len);
        break;
    case VL_WIRE_END:
        if (!x->open)
            break;
        if (x->resp.total > 0) /* no response byte: nothing to archive */
            write_exchange(x, ev);
        exchange_end(x);
        break;
    default:
        break;
    }
}

struct warc_exchange *warc_exchange_new(struct warc *w)
{
    struct warc_exchange *x = calloc(1, sizeof(*x));
    if (x) {
        x->w = w;
        x->req.fd = x->resp.fd = -1;
    }
    return x;
}

void warc_exchange_free(struct warc_exchange *x)
{
    if (!x)
        return;
    if (x->open)
        exchange_end(x);
    free(x);
}

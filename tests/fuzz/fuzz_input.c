/* fuzz_input.c: the CLI's URL-list reader (input_read_urls, src/cli/input.c),
 * on the input bytes as a memory stream: no threads, the same code the
 * reader thread runs.  Properties: the URLs it gives are exactly those of a
 * reference split written here from the documented rules (lines end at
 * '\n', the last may lack one; a line is cut at its first NUL; spaces and
 * tabs are trimmed in front, spaces, tabs, CR and LF at the end; blank
 * lines and lines starting with '#' give nothing), in order; none is empty,
 * none starts with '#'; an emit error stops the read at once. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

struct seen {
    const uint8_t *data;
    size_t size, pos;  /* the reference split's position in data */
    size_t count, stop_after;
};

static int is_end_trim(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* The next URL by the rules above, as [*start, *start + *len), or 0 at the end. */
static int reference_next(struct seen *s, const uint8_t **start, size_t *len)
{
    while (s->pos < s->size) {
        const uint8_t *line = s->data + s->pos;
        const uint8_t *nl = memchr(line, '\n', s->size - s->pos);
        size_t n = nl ? (size_t)(nl - line) + 1 : s->size - s->pos;
        s->pos += n;
        const uint8_t *nul = memchr(line, '\0', n);
        if (nul)
            n = (size_t)(nul - line);
        size_t a = 0;
        while (a < n && (line[a] == ' ' || line[a] == '\t'))
            a++;
        while (n > a && is_end_trim(line[n - 1]))
            n--;
        if (n > a && line[a] != '#') {
            *start = line + a;
            *len = n - a;
            return 1;
        }
    }
    return 0;
}

static int emit(void *data, const char *url)
{
    struct seen *s = data;
    const uint8_t *want;
    size_t len;
    if (!reference_next(s, &want, &len) || strlen(url) != len || memcmp(url, want, len) != 0) {
        fprintf(stderr, "fuzz_input: URL %zu is '%s', not what the rules give\n", s->count, url);
        abort();
    }
    if (url[0] == '#' || url[0] == '\0')
        abort();
    if (++s->count == s->stop_after)
        return -1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* The first byte: after how many URLs emit fails (0: never). */
    struct seen s = {data + 1, size - 1, 0, 0, data[0] % 8};
    FILE *f = fmemopen((void *)(data + 1), size - 1 ? size - 1 : 1, "r");
    if (!f)
        return 0;
    if (size == 1)
        fgetc(f); /* fmemopen wants a size > 0: read the one placeholder byte away */
    char *line = NULL;
    size_t cap = 0;
    int rc = input_read_urls(f, &line, &cap, emit, &s);
    fclose(f);
    free(line);
    const uint8_t *u;
    size_t len;
    if (rc == 0 && (s.stop_after && s.count >= s.stop_after))
        abort(); /* emit failed, yet the read went on */
    if (rc == 0 && reference_next(&s, &u, &len)) {
        fprintf(stderr, "fuzz_input: the reader stopped after %zu URLs; the rules give more\n",
                s.count);
        abort();
    }
    if (rc < 0 && s.count != s.stop_after)
        abort();
    return 0;
}

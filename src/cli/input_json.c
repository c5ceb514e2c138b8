/* input_json.c: --input-format json.  Each input line is one JSON object,
 *   {"url": "...", "method": "PUT", "headers": {...} or [...],
 *    "body": "...", "index": N, "id": any}
 * of which only url is required.  Parsed with jansson; this file is the
 * only one that knows it (input.c is also linked into the fuzz harnesses,
 * which do not link jansson).  A bad line becomes an item with an error,
 * never a stop: one record per line, whatever the line holds.
 *
 * Precedence, per request: the line's method and body replace -X and
 * -d/--data-binary; its headers come first and each -H header is added
 * unless the line names a header of the same name (case-insensitive). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

/* Explicit indexes stay below this: --resume keeps a bitmap of them. */
#define INPUT_INDEX_MAX (1LL << 40)

static void set_error(struct input_item *it, int64_t lineno, const char *what)
{
    char msg[320];
    snprintf(msg, sizeof(msg), "input: line %lld: %s", (long long)lineno, what);
    free(it->error);
    it->error = strdup(msg);
}

/* A string member without NULs (url, method, header parts); NULL if not. */
static const char *plain_string(json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    return strlen(s) == json_string_length(v) ? s : NULL;
}

static int add_header(struct input_item *it, const char *name, size_t name_len,
                      const char *value)
{
    char **h = realloc(it->headers, (it->nheaders + 1) * sizeof(*h));
    if (!h)
        return -1;
    it->headers = h;
    size_t n = name_len + strlen(value) + 3;
    if (!(h[it->nheaders] = malloc(n)))
        return -1;
    snprintf(h[it->nheaders], n, "%.*s: %s", (int)name_len, name, value);
    it->nheaders++;
    return 0;
}

/* "Name" must be a token-ish name: non-empty, no ':', no space or control. */
static int bad_name(const char *name, size_t len)
{
    if (len == 0)
        return 1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] <= ' ' || name[i] == ':' || name[i] == 0x7f)
            return 1;
    return 0;
}

static int bad_value(const char *v) { return v == NULL || strpbrk(v, "\r\n") != NULL; }

/* "headers": an object {"Name": "value"} or an array of "Name: value"
 * strings (an array can repeat a name).  Returns an error text or NULL. */
static const char *parse_headers(struct input_item *it, json_t *h)
{
    if (json_is_object(h)) {
        const char *name;
        json_t *v;
        json_object_foreach(h, name, v) {
            const char *value = plain_string(v);
            if (bad_name(name, strlen(name)))
                return "\"headers\": bad header name";
            if (bad_value(value))
                return "\"headers\": each value must be a string without CR or LF";
            if (add_header(it, name, strlen(name), value) < 0)
                return "out of memory";
        }
        return NULL;
    }
    if (!json_is_array(h))
        return "\"headers\" must be an object or an array of \"Name: value\" strings";
    size_t i;
    json_t *v;
    json_array_foreach(h, i, v) {
        const char *s = plain_string(v);
        const char *colon = s ? strchr(s, ':') : NULL;
        if (!colon || bad_value(s))
            return "\"headers\": each array element must be a \"Name: value\" string";
        if (bad_name(s, (size_t)(colon - s)))
            return "\"headers\": bad header name";
        const char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        if (add_header(it, s, (size_t)(colon - s), value) < 0)
            return "out of memory";
    }
    return NULL;
}

static int names_header(const struct input_item *it, const char *h)
{
    size_t n = strcspn(h, ":");
    for (size_t i = 0; i < it->nheaders; i++)
        if (strncasecmp(it->headers[i], h, n) == 0 && it->headers[i][n] == ':')
            return 1;
    return 0;
}

/* The line's headers, then each -H the line does not override. */
static int merge_cli_headers(struct input_item *it, const struct cli_opts *o)
{
    size_t own = it->nheaders;
    for (size_t i = 0; i < o->nheaders; i++) {
        struct input_item view = {.headers = it->headers, .nheaders = own};
        if (names_header(&view, o->headers[i]))
            continue;
        char **h = realloc(it->headers, (it->nheaders + 1) * sizeof(*h));
        if (!h)
            return -1;
        it->headers = h;
        if (!(h[it->nheaders] = strdup(o->headers[i])))
            return -1;
        it->nheaders++;
    }
    return 0;
}

static const char *parse_method(struct input_item *it, json_t *m)
{
    const char *s = plain_string(m);
    if (!s || !*s || strpbrk(s, " \t\r\n"))
        return "\"method\" must be a non-empty string without spaces";
    return (it->method = strdup(s)) ? NULL : "out of memory";
}

static const char *parse_body(struct input_item *it, json_t *b)
{
    if (!json_is_string(b))
        return "\"body\" must be a string";
    it->body_len = json_string_length(b);
    if (!(it->body = malloc(it->body_len + 1)))
        return "out of memory";
    memcpy(it->body, json_string_value(b), it->body_len + 1);
    it->has_body = 1;
    return NULL;
}

/* Every member but url and index, once the object is known to be one. */
static const char *parse_members(struct input_item *it, json_t *obj, const struct cli_opts *o)
{
    json_t *v;
    const char *err = NULL;
    if ((v = json_object_get(obj, "id")) &&
        !(it->id_json = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
        return "out of memory";
    v = json_object_get(obj, "url");
    if (!v)
        return "\"url\" missing";
    const char *url = plain_string(v);
    if (!url)
        return "\"url\" must be a string";
    if (!(it->url = strdup(url)))
        return "out of memory";
    if ((v = json_object_get(obj, "method")) && (err = parse_method(it, v)))
        return err;
    if ((v = json_object_get(obj, "headers")) && (err = parse_headers(it, v)))
        return err;
    if ((v = json_object_get(obj, "body")) && (err = parse_body(it, v)))
        return err;
    if (it->has_body && it->method && strcmp(it->method, "HEAD") == 0)
        return "a HEAD request cannot have a \"body\"";
    if (merge_cli_headers(it, o) < 0)
        return "out of memory";
    return NULL;
}

struct input_item *input_parse_json(const struct cli_opts *o, const char *line, int64_t lineno,
                                    int64_t index)
{
    struct input_item *it = calloc(1, sizeof(*it));
    if (!it)
        return NULL;
    it->index = index;
    json_error_t jerr;
    json_t *obj = json_loads(line, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    const char *err = NULL;
    char msg[256];
    if (!obj) {
        snprintf(msg, sizeof(msg), "invalid JSON: %s (column %d)", jerr.text, jerr.column);
        err = msg;
    } else if (!json_is_object(obj)) {
        err = "not a JSON object";
    } else {
        json_t *ix = json_object_get(obj, "index");
        if (ix && (!json_is_integer(ix) || json_integer_value(ix) < 0 ||
                   json_integer_value(ix) >= INPUT_INDEX_MAX))
            err = "\"index\" must be an integer from 0 to 2^40-1";
        else if (ix)
            it->index = json_integer_value(ix);
        if (!err)
            err = parse_members(it, obj, o);
    }
    json_decref(obj);
    if (err) {
        set_error(it, lineno, err);
        if (!it->error) {
            input_item_free(it);
            return NULL;
        }
    }
    return it;
}

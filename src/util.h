/* util.h: intrusive lists, container_of, small string helpers. */
#ifndef VL_UTIL_H
#define VL_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Doubly linked intrusive list; an unlinked node points to itself. */
struct list_node {
    struct list_node *prev, *next;
};

static inline void list_init(struct list_node *n) { n->prev = n->next = n; }
static inline int list_empty(const struct list_node *h) { return h->next == h; }
static inline void list_insert_tail(struct list_node *h, struct list_node *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}
static inline void list_remove(struct list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}
static inline int list_linked(const struct list_node *n) { return n->next != n; }
static inline struct list_node *list_pop_head(struct list_node *h)
{
    if (list_empty(h))
        return NULL;
    struct list_node *n = h->next;
    list_remove(n);
    return n;
}

/* A growable NUL-terminated byte string; after an allocation failure it
 * only records oom (check once at the end, not after every append). */
struct vl_buf {
    char *p;
    size_t len, cap;
    int oom;
};

void vl_buf_add(struct vl_buf *b, const char *s, size_t n);
void vl_buf_addc(struct vl_buf *b, char c);
void vl_buf_adds(struct vl_buf *b, const char *s);
/* v in decimal (no printf: it was a tenth of url_parse's time). */
void vl_buf_add_uint(struct vl_buf *b, unsigned long long v);
void vl_buf_free(struct vl_buf *b);
/* The buffer's string, never NULL while not oom. */
const char *vl_buf_str(const struct vl_buf *b);

char *vl_strdup(const char *s);
char *vl_strndup(const char *s, size_t n);
/* snprintf that never overflows and tolerates truncation. */
void vl_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vl_strcaseeq_n(const char *a, size_t alen, const char *b);

#endif

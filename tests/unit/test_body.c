/* test_body.c: --body's charset module (src/cli/body.c): WHATWG labels,
 * Content-Type kinds and charset parameters, BOMs, the <meta> prescan
 * (the cases the HTML standard's algorithm decides), the bounded capture
 * and the conversion's cut at a character boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/body.h"

static const char *label(const char *s) { return charset_for_label(s, strlen(s)); }

static void labels_map_as_whatwg_says(void **state)
{
    (void)state;
    assert_string_equal(label("latin1"), "windows-1252");
    assert_string_equal(label("ISO-8859-1"), "windows-1252");
    assert_string_equal(label("us-ascii"), "windows-1252");
    assert_string_equal(label(" utf8\t"), "utf-8");
    assert_string_equal(label("Shift_JIS"), "shift_jis");
    assert_string_equal(label("x-sjis"), "shift_jis");
    assert_string_equal(label("ks_c_5601-1987"), "euc-kr");
    assert_string_equal(label("gb2312"), "gbk");
    assert_string_equal(label("utf-16"), "utf-16le");
    assert_string_equal(label("iso-8859-9"), "windows-1254");
    assert_null(label("iso-2022-kr"));   /* the replacement encoding: not decoded */
    assert_null(label("x-user-defined"));
    assert_null(label("utf-7"));
    assert_null(label(""));
    assert_string_equal(charset_for_label("utf-8x", 5), "utf-8"); /* only len bytes count */
}

static void content_types_are_classified(void **state)
{
    (void)state;
    const char *cs;
    size_t n;
    assert_int_equal(body_kind("text/html; charset=EUC-KR", &cs, &n), BODY_KIND_HTML);
    assert_int_equal((int)n, 6);
    assert_memory_equal(cs, "EUC-KR", 6);
    assert_int_equal(body_kind("text/plain;format=flowed; charset=\"koi8-r\"", &cs, &n),
                     BODY_KIND_TEXT);
    assert_memory_equal(cs, "koi8-r", n);
    assert_int_equal(body_kind("Application/JSON", &cs, &n), BODY_KIND_JSON);
    assert_null(cs);
    assert_int_equal(body_kind("application/ld+json", NULL, NULL), BODY_KIND_JSON);
    assert_int_equal(body_kind("image/svg+xml", NULL, NULL), BODY_KIND_TEXT);
    assert_int_equal(body_kind("application/javascript", NULL, NULL), BODY_KIND_TEXT);
    assert_int_equal(body_kind("image/png", NULL, NULL), BODY_KIND_BINARY);
    assert_int_equal(body_kind("application/octet-stream; charset=utf-8", NULL, NULL),
                     BODY_KIND_BINARY);
    assert_int_equal(body_kind(NULL, &cs, &n), BODY_KIND_BINARY);
    assert_null(cs);
}

static void boms_are_recognised(void **state)
{
    (void)state;
    size_t n;
    assert_string_equal(charset_bom("\xEF\xBB\xBFx", 4, &n), "utf-8");
    assert_int_equal((int)n, 3);
    assert_string_equal(charset_bom("\xFE\xFF", 2, &n), "utf-16be");
    assert_string_equal(charset_bom("\xFF\xFE\x41\x00", 4, &n), "utf-16le");
    assert_null(charset_bom("\xEF\xBB", 2, &n));
    assert_int_equal((int)n, 0);
}

static const char *pre(const char *s) { return charset_prescan(s, strlen(s)); }

static void meta_prescan_follows_the_html_standard(void **state)
{
    (void)state;
    assert_string_equal(pre("<meta charset=euc-kr>"), "euc-kr");
    assert_string_equal(pre("<html><head><META CHARSET='Shift_JIS'/>"), "shift_jis");
    assert_string_equal(pre("<meta http-equiv=\"Content-Type\" "
                            "content=\"text/html; charset=gb2312\">"), "gbk");
    assert_string_equal(pre("<meta content='text/html;charset = \"koi8-r\"' "
                            "http-equiv=content-type>"), "koi8-r");
    /* content= needs http-equiv=content-type */
    assert_null(pre("<meta content=\"text/html; charset=euc-kr\">"));
    /* inside a comment, an attribute value, or another tag: not a meta */
    assert_null(pre("<!-- <meta charset=euc-kr> -->"));
    assert_null(pre("<p title=\"<meta charset=euc-kr>\">"));
    assert_string_equal(pre("<!--> <meta charset=euc-kr>"), "euc-kr"); /* "<!-->" ends at once */
    /* the first charset counts; an unknown one is passed over */
    assert_string_equal(pre("<meta charset=koi8-u charset=euc-kr>"), "koi8-u");
    assert_string_equal(pre("<meta charset=bogus><meta charset=big5>"), "big5");
    /* a page cannot say it is UTF-16: it would not be readable as ASCII */
    assert_string_equal(pre("<meta charset=utf-16le>"), "utf-8");
    /* "<metax" is another tag; "<meta" needs a space or slash after it */
    assert_null(pre("<metax charset=euc-kr>"));
    /* cut short: nothing */
    assert_null(pre("<meta charset=euc-kr"));
    /* only the first 1024 bytes */
    char late[1200];
    memset(late, ' ', sizeof(late));
    memcpy(late + 1010, "<meta charset=euc-kr>", 21);
    assert_null(charset_prescan(late, sizeof(late)));
    memcpy(late + 990, "<meta charset=euc-kr>", 21);
    assert_string_equal(charset_prescan(late, sizeof(late)), "euc-kr");
}

static void capture_keeps_at_most_max_bytes(void **state)
{
    (void)state;
    struct body_capture c = {0};
    body_capture_begin(&c, 10);
    assert_int_equal(body_capture_add(&c, "0123456", 7), 0);
    assert_int_equal(body_capture_add(&c, "789abcdef", 9), 0);
    assert_int_equal((int)c.len, 10);
    assert_true(c.cap <= 10);
    assert_int_equal((int)c.total, 16);
    assert_memory_equal(c.buf, "0123456789", 10);
    body_capture_end(&c);
    assert_int_equal((int)c.len, 0);
    body_capture_free(&c);
}

static void decode_cuts_a_truncated_body_at_a_character(void **state)
{
    (void)state;
    struct body_capture c = {0};
    struct out_body ob;
    /* EUC-KR "한국" (C7 D1 B1 B9) cut after 3 bytes: one character */
    body_capture_begin(&c, 3);
    body_capture_add(&c, "\xC7\xD1\xB1\xB9", 4);
    assert_int_equal(body_decode(&c, "text/plain; charset=euc-kr", &ob), 0);
    assert_true(ob.text && ob.truncated);
    assert_int_equal((int)ob.len, 3);
    assert_memory_equal(ob.data, "\xED\x95\x9C", 3); /* U+D55C */
    /* the same bytes, whole but with a stray last byte: U+FFFD for it */
    body_capture_begin(&c, 100);
    body_capture_add(&c, "\xC7\xD1\xB1", 3);
    assert_int_equal(body_decode(&c, "text/plain; charset=euc-kr", &ob), 0);
    assert_false(ob.truncated);
    assert_int_equal((int)ob.len, 6);
    assert_memory_equal(ob.data, "\xED\x95\x9C\xEF\xBF\xBD", 6);
    /* UTF-8 "é€" cut inside the euro sign */
    body_capture_begin(&c, 4);
    body_capture_add(&c, "\xC3\xA9\xE2\x82\xAC", 5);
    assert_int_equal(body_decode(&c, "text/plain; charset=utf-8", &ob), 0);
    assert_int_equal((int)ob.len, 2);
    assert_string_equal(ob.charset_source, "header");
    /* UTF-16LE with its BOM, no label: "hi" */
    body_capture_begin(&c, 100);
    body_capture_add(&c, "\xFF\xFEh\0i\0", 6);
    assert_int_equal(body_decode(&c, "text/plain", &ob), 0);
    assert_string_equal(ob.charset, "utf-16le");
    assert_string_equal(ob.charset_source, "bom");
    assert_int_equal((int)ob.len, 2);
    assert_memory_equal(ob.data, "hi", 2);
    /* JSON without a label is UTF-8 (RFC 8259 §8.1), never a guess */
    body_capture_begin(&c, 100);
    body_capture_add(&c, "{\"a\":\"\xC7\xD1\xB1\xB9\"}", 12);
    assert_int_equal(body_decode(&c, "application/json", &ob), 0);
    assert_string_equal(ob.charset, "utf-8");
    assert_string_equal(ob.charset_source, "default");
    /* bytes stay bytes, in base64 */
    assert_int_equal(body_decode(&c, "image/gif", &ob), 0);
    assert_false(ob.text);
    assert_int_equal((int)ob.len, 16);
    assert_memory_equal(ob.data, "eyJhIjoix9GxuSJ9", 16);
    body_capture_free(&c);
    body_thread_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(labels_map_as_whatwg_says),
        cmocka_unit_test(content_types_are_classified),
        cmocka_unit_test(boms_are_recognised),
        cmocka_unit_test(meta_prescan_follows_the_html_standard),
        cmocka_unit_test(capture_keeps_at_most_max_bytes),
        cmocka_unit_test(decode_cuts_a_truncated_body_at_a_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

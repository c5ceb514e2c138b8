"""--body: the decoded body in the JSON record (issue 13, part 1).

Text types become "body" (UTF-8) with "charset" and "charset_source"; other
types become "body_base64".  Each "body" is compared with Python's
bytes.decode(charset, errors="replace") of the same bytes, where charset is
the WHATWG name the record reports.  Python's codec for each of those names
agrees with the WHATWG decoder on the text used here (Hangul syllables of
KS X 1001, JIS X 0208 kana and kanji, GB2312 hanzi, Latin-1 letters), with
one exception the test names where it matters: the labels "latin1",
"iso-8859-1" and "ascii" mean windows-1252 to a browser (and to volley), so
the comparison there is with Python's "cp1252", not its "latin-1" (which
would read 0x80 as U+0080, not the euro sign).  A BOM is not text: the
comparison is with the bytes after it (Python's "utf-16-le" would keep it
as U+FEFF)."""
import base64
import gzip
import json
import os
import random

from harness import Nginx, ScriptedServer, check_record, free_port, run_volley, timeout
import scripted

KO = ("대한민국은 동아시아의 한반도 남부에 위치한 민주공화국이다. 수도는 서울특별시이며, "
      "국기는 태극기, 국가는 애국가이다. 인구는 약 오천만 명이다. ")
JA = ("日本語のテキストです。これは文字コードの判定のためのサンプルです。"
      "東京は日本の首都であり、多くの人が住んでいます。")
ZH = "中华人民共和国是位于东亚的社会主义国家，首都北京。全国共有三十四个省级行政区，人口约十四亿。"
FR = "Le café est très apprécié en été; à Noël, les enfants reçoivent des cadeaux. "


def raw_url(s, head, body, piece=0, status="200 OK"):
    """A /raw URL of the scripted server answering exactly head + body."""
    resp = ("HTTP/1.1 %s\r\n" % status).encode()
    for h in head:
        resp += h.encode("latin-1") + b"\r\n"
    resp += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
    url = "/raw?r=" + base64.urlsafe_b64encode(resp).decode().rstrip("=")
    if piece:
        url += "&piece=%d" % piece
    return s.url(url)


def fetch_bodies(urls, extra=()):
    res = run_volley(["--json", "--body"] + list(extra) + urls)
    assert res.rc == 0, res.describe("exit 0")
    recs = res.by_index(len(urls))
    for i, u in enumerate(urls):
        check_record(recs[i], u)
    return res, recs


def assert_text(rec, raw, charset, source, skip=0, what=""):
    """rec's body is raw[skip:] decoded as charset (Python's codec of that name)."""
    assert rec["ok"] is True, rec
    assert "body_base64" not in rec, "text came as base64 (%s): %s" % (what, rec)
    assert rec.get("charset") == charset and rec.get("charset_source") == source, (
        "%s: expected charset %s from %s, got %s from %s" % (
            what, charset, source, rec.get("charset"), rec.get("charset_source")))
    want = raw[skip:].decode(charset, errors="replace")
    assert rec["body"] == want, "%s: body differs from Python's %s decode:\n got %r\nwant %r" % (
        what, charset, rec["body"][:200], want[:200])
    assert rec["body_truncated"] is False, rec


def test_body_in_the_header_charset_decodes_like_python(tmp):
    cases = [("euc-kr", KO * 3), ("shift_jis", JA * 3), ("gbk", ZH * 3),
             ("windows-1252", FR * 3)]
    with ScriptedServer(tmp) as s:
        urls = [raw_url(s, ["Content-Type: text/plain; charset=%s" % cs], text.encode(cs))
                for cs, text in cases]
        # a quoted, upper-case label, on HTML
        urls.append(raw_url(s, ['Content-Type: text/html; Charset="EUC-KR"'],
                            ("<p>" + KO + "</p>").encode("euc-kr")))
        _, recs = fetch_bodies(urls)
    for i, (cs, text) in enumerate(cases):
        assert_text(recs[i], text.encode(cs), cs, "header", what=cs)
        assert recs[i]["body"] == text, "%s: not the text served: %r" % (cs, recs[i]["body"][:80])
    assert_text(recs[4], ("<p>" + KO + "</p>").encode("euc-kr"), "euc-kr", "header",
                what="quoted label")


def test_latin1_and_ascii_labels_mean_windows_1252_as_in_browsers(tmp):
    data = b"price: \x80 5, caf\xe9, \x93quoted\x94"
    with ScriptedServer(tmp) as s:
        urls = [raw_url(s, ["Content-Type: text/plain; charset=%s" % label], data)
                for label in ("iso-8859-1", "latin1", "us-ascii")]
        _, recs = fetch_bodies(urls)
    for r in recs.values():
        # Python's cp1252, not its latin-1: WHATWG maps these labels to windows-1252
        assert_text(r, data, "windows-1252", "header", what="label mapping")
        assert r["body"] == "price: \u20ac 5, caf\xe9, \u201cquoted\u201d", r["body"]
        assert r["body"] != data.decode("latin-1")


def test_byte_order_marks_name_the_encoding_and_are_not_text(tmp):
    text = "BOM text: " + FR + KO
    cases = [("utf-16le", b"\xff\xfe", text.encode("utf-16-le")),
             ("utf-16be", b"\xfe\xff", text.encode("utf-16-be")),
             ("utf-8", b"\xef\xbb\xbf", text.encode("utf-8"))]
    with ScriptedServer(tmp) as s:
        urls = [raw_url(s, ["Content-Type: text/plain"], bom + data) for _, bom, data in cases]
        _, recs = fetch_bodies(urls)
    for i, (cs, bom, data) in enumerate(cases):
        assert_text(recs[i], bom + data, cs, "bom", skip=len(bom), what=cs)
        assert recs[i]["body"] == text, "%s: %r" % (cs, recs[i]["body"][:60])


def test_a_mislabelled_page_is_read_as_its_header_says(tmp):
    # UTF-8 bytes (with a UTF-8 BOM and a <meta> that says UTF-8) served as
    # windows-1252: the header wins, so the text comes out as mojibake,
    # exactly as Python's cp1252 reads those bytes (0x81 etc. undefined: U+FFFD).
    page = ('<meta charset="utf-8"><p>' + FR + "한</p>").encode("utf-8")
    with ScriptedServer(tmp) as s:
        url = raw_url(s, ["Content-Type: text/html; charset=windows-1252"], b"\xef\xbb\xbf" + page)
        _, recs = fetch_bodies([url])
    assert_text(recs[0], b"\xef\xbb\xbf" + page, "windows-1252", "header", what="mislabelled")
    assert recs[0]["body"].startswith("\u00ef\u00bb\u00bf<meta"), recs[0]["body"][:40]
    assert "caf\u00c3\u00a9" in recs[0]["body"], recs[0]["body"][:80]


def test_meta_charset_split_across_reads_and_http_equiv(tmp):
    meta = ('<!doctype html><html><head><meta name="x" charset="euc-kr">'
            "<title>t</title></head><body>" + KO + "</body></html>").encode("euc-kr")
    equiv = ("<html><head><!-- <meta charset=gbk> --><META HTTP-EQUIV='Content-Type' "
             "CONTENT='text/html; charset=Shift_JIS'></head><body>" + JA + "</body>"
             ).encode("shift_jis")
    # content= without http-equiv does not count (WHATWG: need_pragma); the
    # page is ASCII after all, so uchardet has nothing to say: UTF-8
    no_pragma = b'<meta content="text/html; charset=euc-kr"><p>plain ascii</p>'
    # a <meta> past the first 1024 bytes is not looked at
    late = b"<!doctype html>" + b"<p>padding</p>" * 80 + b'<meta charset="euc-kr"><p>ascii</p>'
    assert late.index(b"<meta") > 1024
    with ScriptedServer(tmp) as s:
        urls = [raw_url(s, ["Content-Type: text/html"], meta, piece=7),
                raw_url(s, ["Content-Type: text/html"], equiv, piece=13),
                raw_url(s, ["Content-Type: text/html"], no_pragma),
                raw_url(s, ["Content-Type: text/html"], late)]
        _, recs = fetch_bodies(urls)
    assert_text(recs[0], meta, "euc-kr", "meta", what="<meta charset> in 7-byte pieces")
    assert KO in recs[0]["body"]
    assert_text(recs[1], equiv, "shift_jis", "meta", what="http-equiv")
    assert JA in recs[1]["body"]
    assert_text(recs[2], no_pragma, "utf-8", "default", what="content= without http-equiv")
    assert_text(recs[3], late, "utf-8", "default", what="<meta> after 1024 bytes")


def test_no_label_at_all_is_left_to_uchardet(tmp):
    # uchardet names GBK text GB18030, its superset; and EUC-KR "UHC", which
    # is WHATWG's euc-kr
    cases = [("euc-kr", KO * 4), ("shift_jis", JA * 4), ("gb18030", ZH * 4)]
    with ScriptedServer(tmp) as s:
        urls = [raw_url(s, ["Content-Type: text/plain"], text.encode(cs)) for cs, text in cases]
        urls.append(raw_url(s, ["Content-Type: text/html"], b"<p>only ascii here</p>"))
        # valid UTF-8 is UTF-8 (checked before uchardet is asked)
        urls.append(raw_url(s, ["Content-Type: text/plain"], (FR + KO).encode("utf-8")))
        _, recs = fetch_bodies(urls)
    for i, (cs, text) in enumerate(cases):
        assert_text(recs[i], text.encode(cs), cs, "detected", what="uchardet " + cs)
        assert recs[i]["body"] == text
    assert_text(recs[3], b"<p>only ascii here</p>", "utf-8", "default", what="ASCII")
    assert_text(recs[4], (FR + KO).encode("utf-8"), "utf-8", "detected", what="UTF-8")


def test_json_and_control_characters_stay_valid_json(tmp):
    obj = {"name": "caf\u00e9 \ud55c\uad6d", "list": [1, 2.5, None], "ctl": "a\tb\nc\u0001"}
    data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    ctl = bytes(range(0, 32)) + b'quote " backslash \\ del \x7f'
    with ScriptedServer(tmp) as s:
        urls = [raw_url(s, ["Content-Type: application/json"], data),
                raw_url(s, ["Content-Type: text/plain; charset=utf-8"], ctl),
                raw_url(s, ["Content-Type: application/problem+json"], b'{"a":"\xed\x95\x9c"}')]
        res, recs = fetch_bodies(urls)
    assert_text(recs[0], data, "utf-8", "default", what="JSON")
    assert json.loads(recs[0]["body"]) == obj
    assert_text(recs[1], ctl, "utf-8", "header", what="control characters")
    assert json.loads(recs[2]["body"]) == {"a": "\ud55c"}, recs[2]
    for line in res.stdout.splitlines():
        assert all(ord(ch) >= 0x20 for ch in line), "a raw control character in a record line"


def test_binary_bodies_come_as_base64_and_round_trip(tmp):
    rng = random.Random(13)
    png = b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(3000))
    with ScriptedServer(tmp) as s:
        urls = [raw_url(s, ["Content-Type: image/png"], png),
                raw_url(s, [], png[:100]),  # no Content-Type: bytes, not text
                raw_url(s, ["Content-Type: application/octet-stream"], b"")]
        _, recs = fetch_bodies(urls)
    for r, want in ((recs[0], png), (recs[1], png[:100]), (recs[2], b"")):
        assert "body" not in r and "charset" not in r, r
        assert base64.b64decode(r["body_base64"], validate=True) == want, r["url"][-40:]
        assert r["body_truncated"] is False


def test_gzip_is_undone_before_the_charset(tmp):
    text = KO * 20
    zipped = gzip.compress(text.encode("euc-kr"))
    with ScriptedServer(tmp) as s:
        url = raw_url(s, ["Content-Type: text/plain; charset=euc-kr", "Content-Encoding: gzip"],
                      zipped)
        _, recs = fetch_bodies([url])
    assert_text(recs[0], text.encode("euc-kr"), "euc-kr", "header", what="gzip")
    assert recs[0]["body"] == text and recs[0]["bytes"] == len(text.encode("euc-kr")), recs[0]


# Hangul syllables of KS X 1001 (rows 0xB0-0xC8 of EUC-KR), no ASCII: the
# same bytes in Python's euc_kr and cp949 (WHATWG's euc-kr)
HANGUL = "".join(bytes([0xB0 + k // 94, 0xA1 + k % 94]).decode("euc-kr")
                 for k in ((i * 7) % 2350 for i in range(4000)))


def _truncation_server(tmp):
    ng = Nginx(tmp, big_files=False,
               locations="location /kr/ { charset euc-kr; }\n"
                         "        location /u8/ { charset utf-8; }")
    return ng


@timeout(90)
def test_body_max_cuts_at_a_character_boundary(tmp):
    kr = HANGUL.encode("cp949")  # WHATWG euc-kr is windows-949
    assert HANGUL.encode("euc-kr") == kr
    u8 = HANGUL.encode("utf-8")
    with _truncation_server(tmp) as ng:
        for sub, data in (("kr", kr), ("u8", u8)):
            os.makedirs(os.path.join(ng.root, sub), exist_ok=True)
            with open(os.path.join(ng.root, sub, "t.txt"), "wb") as f:
                f.write(data)
        records = os.path.join(tmp, "records.jsonl")
        urls = [ng.url("/kr/t.txt"), ng.url("/u8/t.txt"), ng.url("/u8/t.txt"),
                ng.url("/kr/t.txt")]
        res = run_volley(["--records", records, "--body", "--body-max", "1001"] + urls[:2])
        assert res.rc == 0, res.describe("exit 0")
        with open(records, "rb") as f:
            raw = f.read()
        lines = raw.decode("utf-8").splitlines()  # strict: every byte valid UTF-8
        recs = {r["index"]: r for r in map(json.loads, lines[1:])}
        # the whole bodies, for comparison, and a body-max just over them
        res2, whole = fetch_bodies(urls[2:], ["--body-max", str(len(u8))])
    for i, (cs, per_char, data) in enumerate((("euc-kr", 2, kr), ("utf-8", 3, u8))):
        r = recs[i]
        assert r["ok"] and r["body_truncated"] is True, r
        assert r["charset"] == cs and r["charset_source"] == "header", r
        n = 1001 // per_char
        assert r["body"] == HANGUL[:n], "%s: %d chars, expected the first %d" % (
            cs, len(r["body"]), n)
        assert "\ufffd" not in r["body"], "%s: a U+FFFD at the cut" % cs
        assert r["bytes"] == len(data), r
    assert whole[0]["body"] == HANGUL and whole[0]["body_truncated"] is False, whole[0]["url"]
    assert whole[1]["body"] == HANGUL and whole[1]["body_truncated"] is False
    assert whole[0]["body"].startswith(recs[1]["body"]) and HANGUL.startswith(recs[0]["body"])


@timeout(120, valgrind=600)
def test_body_memory_is_bounded_by_body_max_not_the_body(tmp):
    with Nginx(tmp) as ng:  # 10m.bin: 10 MiB each
        urls = [ng.url("/10m.bin?i=%d" % i) for i in range(8)]
        base = run_volley(["--json", "-c", "8"] + urls, measure_rss=True, timeout=90)
        res = run_volley(["--json", "--body", "--body-max", "65536", "-c", "8"] + urls,
                         measure_rss=True, timeout=90)
    assert base.rc == 0 and res.rc == 0, res.describe("exit 0")
    for r in res.by_index(8).values():
        assert r["body_truncated"] is True and r["bytes"] == 10 * 1024 * 1024, r["url"]
        assert len(base64.b64decode(r["body_base64"])) == 65536
    if base.peak_rss_kib and res.peak_rss_kib:
        grew = res.peak_rss_kib - base.peak_rss_kib
        # 8 x 64 KiB kept, plus the records; 80 MiB of bodies went through
        assert grew < 16 * 1024, "peak RSS grew %d KiB with --body (base %d KiB)" % (
            grew, base.peak_rss_kib)


def test_body_without_json_is_a_usage_error(tmp):
    url = "http://127.0.0.1:%d/" % free_port()
    for args in (["--body", url], ["--body", "--body-max", "10", url],
                 ["--json", "--body", "--body-max", "0", url],
                 ["--json", "--body", "--body-max", "lots", url]):
        res = run_volley(args, timeout=10)
        assert res.rc == 2 and res.stdout == "", res.describe("exit 2, nothing on stdout")
        assert "--body" in res.stderr, res.describe("a message naming --body")
    res = run_volley(["--body", url], timeout=10)
    assert "--json" in res.stderr, res.describe("the message says --body needs --json")


def test_output_dir_and_body_together(tmp):
    out = os.path.join(tmp, "out")
    text = (KO * 5).encode("euc-kr")
    with ScriptedServer(tmp) as s:
        url = raw_url(s, ["Content-Type: text/plain; charset=euc-kr"], text)
        res = run_volley(["--json", "--body", "-o", out, url], cwd=tmp)
    assert res.rc == 0, res.describe("exit 0")
    r = res.one()
    assert_text(r, text, "euc-kr", "header", what="-o with --body")
    path = r["file"] if os.path.isabs(r["file"]) else os.path.join(tmp, r["file"])
    with open(path, "rb") as f:
        assert f.read() == text, "the saved file is not the body as served"


def test_failed_fetches_say_body_null(tmp):
    dead = "http://127.0.0.1:%d/x" % free_port()
    with ScriptedServer(tmp) as s:
        urls = [dead, s.url("/reset-mid-body"), raw_url(s, ["Content-Type: text/plain"], b"ok")]
        res = run_volley(["--json", "--body"] + urls + ["not a url"])
    assert res.rc == 1, res.describe("exit 1: some failed")
    recs = res.by_index(4)
    for i in (0, 1, 3):
        assert recs[i]["ok"] is False and "body" in recs[i] and recs[i]["body"] is None, recs[i]
        assert "charset" not in recs[i] and "body_base64" not in recs[i], recs[i]
    assert recs[2]["body"] == "ok", recs[2]


@timeout(90)
def test_threads_and_records_file_carry_each_urls_own_body(tmp):
    n = 60
    with Nginx(tmp, big_files=False, locations="location /kr/ { charset euc-kr; }") as ng:
        os.makedirs(os.path.join(ng.root, "kr"), exist_ok=True)
        texts = {}
        for i in range(n):
            texts[i] = ("%d: " % i) + KO[i % 20:] + HANGUL[i:i + 50 + i]
            with open(os.path.join(ng.root, "kr", "%d.txt" % i), "wb") as f:
                f.write(texts[i].encode("euc-kr"))
        urls = os.path.join(tmp, "urls.txt")
        with open(urls, "w") as f:
            f.write("".join(ng.url("/kr/%d.txt" % i) + "\n" for i in range(n)))
        records = os.path.join(tmp, "records.jsonl")
        res = run_volley(["--records", records, "--body", "-t", "2", "-c", "8", "-i", urls])
    assert res.rc == 0, res.describe("exit 0")
    with open(records, "rb") as f:
        lines = f.read().decode("utf-8").splitlines()
    recs = {}
    for r in map(json.loads, lines[1:]):
        assert r["index"] not in recs, "index %d twice" % r["index"]
        recs[r["index"]] = r
    assert sorted(recs) == list(range(n)), sorted(recs)[:10]
    for i, r in recs.items():
        assert r["body"] == texts[i] and r["charset"] == "euc-kr", (
            "record %d has another body: %r" % (i, r["body"][:40]))


def test_a_retried_attempts_body_is_not_part_of_the_record(tmp):
    # a 503's body is dropped by the library (the retry is decided at its
    # head); a 200 cut by a reset mid-body has already handed its first half
    # to the sinks: the record and the -o file carry only the final
    # attempt's body (bytes counts that one too)
    out = os.path.join(tmp, "out")
    with ScriptedServer(tmp) as s:
        urls = [s.url("/flaky?key=a&fail=1"), s.url("/flaky?key=b&fail=2"),
                s.url("/flaky?key=c&fail=1&cut=1"), s.url("/flaky?key=d&fail=2&cut=1")]
        res = run_volley(["--json", "--body", "--retry", "3", "--retry-delay", "0.05", "-o", out]
                         + urls)
    assert res.rc == 0, res.describe("exit 0 after the retries")
    for r in res.by_index(4).values():
        with open(r["file"], "rb") as f:
            assert f.read() == scripted.FLAKY_OK_BODY, "-o %s holds more than the final body" % r["file"]
        assert r["attempts"] >= 2 and r["bytes"] == len(scripted.FLAKY_OK_BODY), r
        assert r["body"] == scripted.FLAKY_OK_BODY.decode(), (
            "expected only the final attempt's body, got %r" % r["body"])
        assert r["body_truncated"] is False, r

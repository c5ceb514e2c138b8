"""--warc FILE: every exchange as WARC 1.1 request and response records,
read back by an independent reader, webrecorder's warcio.js (npm), through
tests/integration/warc_read.mjs.  The digests warcio.js does not check on
reading are recomputed here from the blocks warcio.js returns (sha1 in node,
base32 with Python's own encoder) and compared with the headers volley wrote.

warcio.js is installed on first use with npm into build/node (see
tests/README.md); a failed install fails the tests, never skips them."""
import base64
import gzip
import hashlib
import json
import os
import re
import subprocess
import zlib

from harness import Nginx, ScriptedServer, TESTS_DIR, free_port, run_volley, sanitized, timeout, \
    under_valgrind
import scripted  # after harness, which puts tests/servers on the path

NODE_PREFIX = os.path.join(os.path.dirname(TESTS_DIR), "build", "node")
READER = os.path.join(TESTS_DIR, "integration", "warc_read.mjs")
UUID_RE = re.compile(r"^<urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                     r"[0-9a-f]{12}>$")
DATE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def warcio_prefix():
    """build/node with warcio.js 2.x in it, installed with npm if missing."""
    if not os.path.exists(os.path.join(NODE_PREFIX, "node_modules", "warcio", "package.json")):
        os.makedirs(NODE_PREFIX, exist_ok=True)
        # as the Makefile's build/node rule (make test runs that first)
        env = dict(os.environ)
        if not env.get("NODE_EXTRA_CA_CERTS") and os.access("/etc/ssl/certs/ca-certificates.crt",
                                                             os.R_OK):
            env["NODE_EXTRA_CA_CERTS"] = "/etc/ssl/certs/ca-certificates.crt"
        p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", NODE_PREFIX,
                            "warcio@2"], capture_output=True, text=True, timeout=300, env=env)
        assert p.returncode == 0, ("cannot install warcio.js with npm (needed to read WARC "
                                   "files back): %s %s" % (p.stdout[-1500:], p.stderr[-1500:]))
    return NODE_PREFIX


def read_warc(path):
    """The records of path as warcio.js reads them (see warc_read.mjs)."""
    p = subprocess.run(["node", READER, warcio_prefix(), path], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, "warcio.js cannot read %s: %s" % (path, p.stderr[-2000:])
    return json.loads(p.stdout)


def b32(hexdigest):
    return "sha1:" + base64.b32encode(bytes.fromhex(hexdigest)).decode()


def gzip_members(path):
    """How many gzip members path holds (each must decompress)."""
    with open(path, "rb") as f:
        data = f.read()
    n = 0
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        d.decompress(data)
        assert d.eof, "%s: a gzip member is cut short after %d whole ones" % (path, n)
        data = d.unused_data
        n += 1
    return n


def check_warc(path, gz=None, payloads=None):
    """Checks every WARC file must pass; returns the records.  A warcinfo
    first (and after it, one more for each run that appended); every other
    record a request followed by its response, linked both ways by
    WARC-Concurrent-To, with digests that match what warcio.js read,
    Content-Length equal to the block, and the latest warcinfo's id.
    payloads: {target URI: the body} where the payload digest is to be
    checked against that instead of warcio.js's dechunker (which keeps a
    chunked response's trailers in the payload; RFC 9112 §7.1.2 and
    Python's warcio do not)."""
    gz = path.endswith(".gz") if gz is None else gz
    if gz:
        t = subprocess.run(["gzip", "-t", path], capture_output=True, text=True)
        assert t.returncode == 0, "gzip -t %s: %s" % (path, t.stderr)
    else:
        with open(path, "rb") as f:
            assert f.read(8) == b"WARC/1.1", "%s does not start with WARC/1.1" % path
    recs = read_warc(path)
    if gz:
        assert gzip_members(path) == len(recs), (
            "%s: expected one gzip member per record (%d records), got %d"
            % (path, len(recs), gzip_members(path)))
    assert recs and recs[0]["type"] == "warcinfo", "first record is not warcinfo: %s" % recs[:1]
    info_id = None
    ids = set()
    for r in recs:
        assert r["version"] == "WARC/1.1", r["version"]
        assert UUID_RE.match(r["id"]), "Record-ID %r is not a <urn:uuid:...>" % r["id"]
        assert r["id"] not in ids, "Record-ID %s used twice" % r["id"]
        ids.add(r["id"])
        assert DATE_RE.match(r["date"]), "WARC-Date %r" % r["date"]
        assert r["content_length"] == r["block_len"], (
            "Content-Length %d but the block has %d bytes" % (r["content_length"], r["block_len"]))
        if r["type"] == "warcinfo":
            info_id = r["id"]
            assert r["filename"] == os.path.basename(path), (r["filename"], path)
            assert "software: volley/" in r["text"], r["text"]
            continue
        assert r["warcinfo_id"] == info_id, "WARC-Warcinfo-ID %s, the warcinfo before is %s" % (
            r["warcinfo_id"], info_id)
        assert r["block_digest"] == b32(r["block_sha1"]), (
            "%s %s: WARC-Block-Digest %s, the block's sha1 is %s"
            % (r["type"], r["target_uri"], r["block_digest"], b32(r["block_sha1"])))
        if r["truncated"]:
            assert r["payload_digest"] is None, "a truncated record claims a payload digest"
        elif payloads and r["type"] == "response" and r["target_uri"] in payloads:
            want = b32(hashlib.sha1(payloads[r["target_uri"]]).hexdigest())
            assert r["payload_digest"] == want, (r["payload_digest"], want)
        else:
            assert r["payload_digest"] == b32(r["payload_sha1"]), (
                "%s %s: WARC-Payload-Digest %s, the payload (dechunked by warcio.js) has %s"
                % (r["type"], r["target_uri"], r["payload_digest"], b32(r["payload_sha1"])))
        assert r["ip"] == "127.0.0.1", r["ip"]
        assert r["content_type"] == "application/http;msgtype=%s" % r["type"], r["content_type"]
    assert recs[0]["filename"] == os.path.basename(path)
    body = [r for r in recs if r["type"] != "warcinfo"]
    assert len(body) % 2 == 0, "records after warcinfo do not pair up: %s" % [
        r["type"] for r in body]
    for req, resp in zip(body[0::2], body[1::2]):
        assert (req["type"], resp["type"]) == ("request", "response"), (
            "expected a request then its response, got %s then %s" % (req["type"], resp["type"]))
        assert req["concurrent_to"] == resp["id"] and resp["concurrent_to"] == req["id"], (
            "WARC-Concurrent-To does not link %s and %s" % (req["id"], resp["id"]))
        assert req["target_uri"] == resp["target_uri"] and req["date"] == resp["date"]
    return recs


def responses(recs):
    return {r["target_uri"]: r for r in recs if r["type"] == "response"}


def sha256(b):
    return hashlib.sha256(b).hexdigest()


@timeout(120)
def test_warc_gz_holds_nginx_files_byte_exact_with_digests_warcio_reads_back(tmp):
    path = os.path.join(str(tmp), "crawl.warc.gz")
    names = ["empty.bin", "1k.bin", "100k.bin", "10m.bin", "text.txt"]
    with Nginx(tmp) as ng:
        urls = [ng.url("/" + n) for n in names]
        res = run_volley(["--json", "--warc", path] + urls, timeout=60)
        assert res.rc == 0, res.describe("exit 0")
    recs = check_warc(path)
    assert len(recs) == 1 + 2 * len(names), [r["type"] for r in recs]
    got = responses(recs)
    for name, url in zip(names, urls):
        r = got[url]
        assert r["http_status"] == 200 and not r["truncated"], r
        if name == "text.txt":
            # nginx gzips text: the payload is the gzip bytes as sent (chunked framing
            # removed, content coding kept), and they decode to the file
            assert r["http_headers"].get("content-encoding") == "gzip", r["http_headers"]
            assert r["payload_sha256"] != sha256(Nginx.content(name)), "payload was decoded"
            assert r["content_sha256"] == sha256(Nginx.content(name)), (
                "the payload, decoded by warcio.js, is not text.txt")
        else:
            assert r["payload_len"] == len(Nginx.content(name)), (name, r["payload_len"])
            assert r["payload_sha256"] == sha256(Nginx.content(name)), name
    reqs = [r for r in recs if r["type"] == "request"]
    assert all(r["block_head"].startswith("GET /") for r in reqs), [r["block_head"][:40]
                                                                     for r in reqs]


@timeout(90)
def test_plain_warc_is_uncompressed_and_holds_big_bodies_whole(tmp):
    path = os.path.join(str(tmp), "crawl.warc")
    with Nginx(tmp) as ng:
        urls = [ng.url("/10m.bin"), ng.url("/1k.bin")]
        res = run_volley(["--warc", path] + urls, timeout=60)
        assert res.rc == 0, res.describe("exit 0")
    recs = check_warc(path, gz=False)
    got = responses(recs)
    assert got[urls[0]]["payload_sha256"] == sha256(Nginx.content("10m.bin"))
    assert got[urls[1]]["payload_sha256"] == sha256(Nginx.content("1k.bin"))
    assert os.path.getsize(path) > 10 * 1024 * 1024


def test_chunked_response_keeps_its_framing_and_the_payload_digest_is_dechunked(tmp):
    path = os.path.join(str(tmp), "c.warc.gz")
    plain = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"4\r\nWiki\r\n7;ext=1\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\n\r\n")
    with ScriptedServer(tmp) as s:
        url = s.url("/chunked")
        raw = s.url("/raw?r=" + base64.urlsafe_b64encode(plain).decode() + "&piece=7")
        res = run_volley(["--warc", path, url, raw])
        assert res.rc == 0, res.describe("exit 0")
    recs = check_warc(path, payloads={url: scripted.CHUNKED_BODY})
    # no trailers: warcio.js's dechunker gives the payload volley digested
    r = responses(recs)[raw]
    assert r["payload_sha256"] == sha256(b"Wikipedia in \r\nchunks."), r["payload_len"]
    assert r["block_len"] == len(plain), "the block is not the response as sent"
    r = responses(recs)[url]
    assert "transfer-encoding" in r["http_headers"], r["http_headers"]
    # the chunk-size lines and extensions are in the block as received
    assert ";name=value" in r["block_head"], r["block_head"][:600]
    assert r["raw_payload_len"] > len(scripted.CHUNKED_BODY)
    assert "X-Trailer: done" in r["block_head"], "the trailers are not in the block"


def test_each_redirect_hop_is_its_own_pair_of_records(tmp):
    path = os.path.join(str(tmp), "r.warc.gz")
    loc = "location = /go { return 302 /hop; }\n location = /hop { return 301 /1k.bin; }"
    with Nginx(tmp, locations=loc) as ng:
        res = run_volley(["--json", "--warc", path, ng.url("/go")])
        assert res.rc == 0 and res.one()["redirects"] == 2, res.describe("2 redirects")
        want = [ng.url("/go"), ng.url("/hop"), ng.url("/1k.bin")]
    recs = check_warc(path)
    resp = [r for r in recs if r["type"] == "response"]
    assert [r["target_uri"] for r in resp] == want, [r["target_uri"] for r in resp]
    assert [r["http_status"] for r in resp] == [302, 301, 200]
    assert resp[2]["payload_sha256"] == sha256(Nginx.content("1k.bin"))


@timeout(60)
def test_failed_fetches_write_nothing_false(tmp):
    path = os.path.join(str(tmp), "f.warc.gz")
    dead = "http://127.0.0.1:%d/nothing-listens" % free_port()
    with ScriptedServer(tmp) as s:
        mid, cut = s.url("/reset-mid-body"), s.url("/truncated-cl")
        res = run_volley(["--json", "--warc", path, mid, cut, dead, s.url("/reset")])
        recs_out = {r["url"]: r for r in res.records}
        assert not any(r["ok"] for r in recs_out.values()), res.describe("every fetch failed")
    recs = check_warc(path)
    got = responses(recs)
    # no response byte (refused, reset before answering): no records at all
    assert dead not in got and s.url("/reset") not in got, list(got)
    assert all(r["target_uri"] in (mid, cut) for r in recs[1:]), [r["target_uri"] for r in recs]
    # FIN after 100 of 1000 body bytes: what came, marked, nothing more
    r = got[cut]
    assert r["truncated"] == "unspecified" and r["payload_digest"] is None, r
    assert r["raw_payload_len"] == 100, r["raw_payload_len"]
    # a reset mid-body: the kernel may drop what it had not handed over, so
    # either no response record or one with exactly what was read, marked
    if mid in got:
        r = got[mid]
        assert r["truncated"] == "disconnect", r["truncated"]
        assert r["raw_payload_len"] < 100000, r["raw_payload_len"]
        assert set(r["block_head"].split("\r\n\r\n", 1)[1]) <= {"r"}, "body bytes not sent"


def test_post_body_is_in_the_request_record_and_its_payload_digest(tmp):
    path = os.path.join(str(tmp), "p.warc")
    body = "a=1&b=" + "x" * 70000  # spills the request spool past memory
    with ScriptedServer(tmp) as s:
        res = run_volley(["--warc", path, "-d", body, s.url("/echo")])
        assert res.rc == 0, res.describe("exit 0")
    recs = check_warc(path)
    req = [r for r in recs if r["type"] == "request"][0]
    assert req["block_head"].startswith("POST /echo HTTP/1.1\r\n"), req["block_head"][:80]
    assert req["payload_len"] == len(body) and req["payload_sha256"] == sha256(body.encode())
    resp = responses(recs)[s.url("/echo")]
    assert resp["payload_len"] == req["block_len"], "the echo is not the request as sent"


@timeout(120)
def test_warc_max_size_rolls_over_to_numbered_files_each_with_its_warcinfo(tmp):
    for ext, bound in ((".warc", 250000), (".warc.gz", 5000)):
        roll_over(tmp, ext, bound)


def roll_over(tmp, ext, bound):
    path = os.path.join(str(tmp), "roll" + ext)
    n = 8
    with Nginx(tmp) as ng:
        urls = [ng.url("/100k.bin?i=%d" % i) for i in range(n)]
        res = run_volley(["--warc", path, "--warc-max-size", str(bound), "-c", "2"] + urls)
        assert res.rc == 0, res.describe("exit 0")
    files = [path] + [os.path.join(str(tmp), "roll-%05d%s" % (i, ext)) for i in range(1, 10)]
    files = [f for f in files if os.path.exists(f)]
    assert len(files) >= 3, "expected several files, got %s" % os.listdir(str(tmp))
    seen, infos = [], set()
    for f in files:
        recs = check_warc(f)
        infos.add(recs[0]["id"])
        assert all(r["warcinfo_id"] == recs[0]["id"] for r in recs[1:]), f
        seen += [r["target_uri"] for r in recs if r["type"] == "response"]
        assert all(r["payload_len"] == 100 * 1024 for r in recs if r["type"] == "response")
    assert len(infos) == len(files), "files share a warcinfo"
    assert sorted(seen) == sorted(urls), "responses across files: %s" % seen
    for f in files[:-1]:  # a file fills past the bound by at most one exchange
        assert os.path.getsize(f) >= bound, (f, os.path.getsize(f))


@timeout(120)
def test_threads_write_whole_records_into_one_warc(tmp):
    path = os.path.join(str(tmp), "t.warc.gz")
    names = ["100k.bin", "1k.bin", "text.txt", "empty.bin"]
    with Nginx(tmp) as ng:
        urls = [ng.url("/%s?i=%d" % (names[i % 4], i)) for i in range(40)]
        res = run_volley(["--json", "-t", "2", "-c", "8", "--warc", path] + urls, timeout=60)
        assert res.rc == 0 and len(res.by_index(40)) == 40, res.describe("40 ok")
    recs = check_warc(path)
    got = responses(recs)
    assert sorted(got) == sorted(urls), "expected one response record per URL"
    for i, u in enumerate(urls):
        name = names[i % 4]
        if name != "text.txt":
            assert got[u]["payload_sha256"] == sha256(Nginx.content(name)), u
        else:
            assert got[u]["content_sha256"] == sha256(Nginx.content(name)), u


def test_resume_appends_to_the_warc_with_a_new_warcinfo(tmp):
    path = os.path.join(str(tmp), "a.warc.gz")
    rec = os.path.join(str(tmp), "r.jsonl")
    lst = os.path.join(str(tmp), "urls.txt")
    with ScriptedServer(tmp) as s:
        with open(lst, "w") as f:
            f.write("%s\n%s\n" % (s.url("/ok?i=0"), s.url("/truncated-cl")))
        first = run_volley(["--records", rec, "--warc", path, "-i", lst])
        assert first.rc == 1, first.describe("exit 1 (one failure)")
        again = run_volley(["--records", rec, "--resume", "--warc", path, "-i", lst])
        assert again.rc == 1, again.describe("exit 1")
    recs = check_warc(path)
    assert [r["type"] for r in recs].count("warcinfo") == 2, [r["type"] for r in recs]
    uris = [r["target_uri"] for r in recs if r["type"] == "response"]
    assert uris.count(s.url("/truncated-cl")) == 2 and uris.count(s.url("/ok?i=0")) == 1, uris


@timeout(90)
def test_memory_stays_bounded_with_big_bodies(tmp):
    path = os.path.join(str(tmp), "m.warc.gz")
    with Nginx(tmp) as ng:
        urls = [ng.url("/10m.bin?i=%d" % i) for i in range(4)]
        res = run_volley(["--warc", path, "-c", "4"] + urls, timeout=60, measure_rss=True)
        assert res.rc == 0, res.describe("exit 0")
    if not sanitized() and not under_valgrind() and res.peak_rss_kib:
        # 40 MiB went through; the spools keep 64 KiB per direction in memory
        assert res.peak_rss_kib < 16 * 1024, "peak RSS %d KiB" % res.peak_rss_kib
    got = responses(check_warc(path))
    assert all(got[u]["payload_sha256"] == sha256(Nginx.content("10m.bin")) for u in urls)


def test_warc_usage_errors_are_clear(tmp):
    res = run_volley(["--warc-max-size", "100", "http://127.0.0.1:1/"], check=True)
    assert res.rc == 2 and "--warc-max-size needs --warc" in res.stderr, res.describe("exit 2")
    res = run_volley(["--warc", "x.warc", "--warc-max-size", "0", "http://127.0.0.1:1/"])
    assert res.rc == 2 and "invalid --warc-max-size" in res.stderr, res.describe("exit 2")
    bad = os.path.join(str(tmp), "no-such-dir", "x.warc.gz")
    res = run_volley(["--warc", bad, "http://127.0.0.1:1/"])
    assert res.rc == 2 and "cannot open" in res.stderr and bad in res.stderr, (
        res.describe("exit 2 naming the file"))


def test_bytes_after_the_response_are_not_in_its_record(tmp):
    path = os.path.join(str(tmp), "x.warc")
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    extra = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnot asked for"
    with ScriptedServer(tmp) as s:
        url = s.url("/raw?r=" + base64.urlsafe_b64encode(resp + extra).decode())
        res = run_volley(["--warc", path, url])
        assert res.rc == 0, res.describe("exit 0")
    r = responses(check_warc(path))[url]
    assert r["block_len"] == len(resp), (
        "expected the %d bytes of the response, got %d: %r"
        % (len(resp), r["block_len"], r["block_head"]))


def test_a_response_cut_by_a_bound_or_a_timeout_says_why(tmp):
    path = os.path.join(str(tmp), "b.warc")
    with ScriptedServer(tmp) as s:
        big, stall = s.url("/ok?size=300000"), s.url("/stall-body")
        res = run_volley(["--json", "--warc", path, "--max-filesize", "1000",
                          "--read-timeout", "0.5", big, stall])
        assert res.rc == 1 and not any(r["ok"] for r in res.records), res.describe("2 failed")
    got = responses(check_warc(path))
    assert got[big]["truncated"] == "length", got[big]["truncated"]
    assert got[big]["raw_payload_len"] < 300000, got[big]["raw_payload_len"]
    assert got[stall]["truncated"] == "time", got[stall]["truncated"]
    assert got[stall]["raw_payload_len"] == 1000, got[stall]["raw_payload_len"]


def test_a_warc_that_cannot_be_written_is_one_clear_usage_error(tmp):
    res = run_volley(["--warc", "/dev/full", "http://127.0.0.1:1/"])
    assert res.rc == 2, res.describe("exit 2")
    lines = [l for l in res.stderr.splitlines() if "--warc" in l]
    assert lines == ["volley: --warc: cannot write /dev/full: No space left on device"], (
        res.describe("one line naming /dev/full and ENOSPC"))


@timeout(90)
def test_incompressible_bodies_are_stored_in_their_gzip_member_and_read_back_whole(tmp):
    path = os.path.join(str(tmp), "s.warc.gz")
    blob = os.urandom(3 * 1024 * 1024 + 17)
    with Nginx(tmp) as ng:
        with open(os.path.join(ng.root, "random.bin"), "wb") as f:
            f.write(blob)
        urls = [ng.url("/random.bin"), ng.url("/100k.bin"), ng.url("/random.bin?again")]
        res = run_volley(["--warc", path] + urls, timeout=60)
        assert res.rc == 0, res.describe("exit 0")
    got = responses(check_warc(path))
    assert got[urls[0]]["payload_sha256"] == sha256(blob) == got[urls[2]]["payload_sha256"]
    # the compressible record after a stored one is compressed again
    assert got[urls[1]]["payload_sha256"] == sha256(Nginx.content("100k.bin"))
    size = os.path.getsize(path)
    assert 2 * len(blob) < size < 2 * len(blob) + 64 * 1024, (
        "expected about the two random bodies' size (stored) plus a little, got %d" % size)


def test_https_exchanges_are_archived_as_the_plaintext_above_tls(tmp):
    from tls_helpers import certs_in
    path = os.path.join(str(tmp), "tls.warc.gz")
    certs = certs_in(tmp)
    with Nginx(tmp, ssl=(certs["good"], certs.key), big_files=False) as ng:
        urls = ["https://localhost:%d/%s" % (ng.port, n) for n in ("100k.bin", "text.txt")]
        res = run_volley(["--warc", path, "--cacert", certs.ca] + urls,
                         env={"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""})
        assert res.rc == 0, res.describe("exit 0")
    got = responses(check_warc(path))
    assert got[urls[0]]["block_head"].startswith("HTTP/1.1 200 OK\r\n"), "not the plaintext"
    assert got[urls[0]]["payload_sha256"] == sha256(Nginx.content("100k.bin"))
    assert got[urls[1]]["content_sha256"] == sha256(Nginx.content("text.txt"))


def test_target_uri_leaves_out_credentials_and_the_fragment(tmp):
    path = os.path.join(str(tmp), "u.warc")
    with ScriptedServer(tmp) as s:
        url = "http://user:secret@127.0.0.1:%d/ok?q=1#frag" % s.port
        res = run_volley(["--warc", path, url])
        assert res.rc == 0, res.describe("exit 0")
    recs = check_warc(path)
    assert [r["target_uri"] for r in recs[1:]] == [s.url("/ok?q=1")] * 2, [
        r["target_uri"] for r in recs[1:]]
    with open(path, "rb") as f:
        assert b"secret" not in f.read(), "the password is in the archive"

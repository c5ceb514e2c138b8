"""-t N: N worker threads, each with its own loop and client, share one input
and one stdout.  Records stay whole and one per index, failures included,
and a thread leaves nothing behind when it ends (issue 11 §4: the JSON
record buffer leaked 512 bytes a thread; make asan and make valgrind catch
that through run_volley's health check)."""
import os

from harness import ScriptedServer, check_record, free_port, read_file_field, run_volley
import scripted

# (path, ok?) mixed so that every thread sees successes and failures.
MIX = [("/ok", True), ("/chunked", True), ("/malformed", False), ("/ok?size=5000", True),
       ("/truncated-cl", False), ("/slow?ms=50", True), ("/nope", True), ("/close", True),
       ("/truncated-chunked", False), ("/204", True)]


def mixed_urls(s, rounds):
    """(urls, expected ok per index): MIX repeated, and a refused port each round."""
    refused = "http://127.0.0.1:%d/refused" % free_port()
    urls, oks = [], []
    for r in range(rounds):
        for path, ok in MIX:
            sep = "&" if "?" in path else "?"
            urls.append(s.url("%s%sr=%d" % (path, sep, r)))
            oks.append(ok)
        urls.append(refused)
        oks.append(False)
    return urls, oks


def run_threads(tmp, threads, outdir=None, rounds=4):
    with ScriptedServer(tmp) as s:
        urls, oks = mixed_urls(s, rounds)
        args = ["--json", "-t", threads, "-c", 2 * threads]
        if outdir:
            args += ["-o", outdir]
        res = run_volley(args + urls, cwd=tmp, timeout=60)
    recs = res.by_index(len(urls))
    for i, url in enumerate(urls):
        r = check_record(recs[i], url)
        assert r["ok"] is oks[i], "index %d (%s): ok %s, expected %s: %s" % (
            i, url, r["ok"], oks[i], r)
    failed = oks.count(False)
    assert res.rc == 1, res.describe("exit 1: %d of %d fetches fail" % (failed, len(urls)))
    assert "%d URLs, %d ok, %d failed" % (len(urls), len(urls) - failed, failed) in res.stderr, (
        res.describe("a summary that counts every thread's records"))
    return urls, recs


def test_two_threads_json_gives_one_whole_record_per_index_with_failures_mixed_in(tmp):
    run_threads(tmp, 2)


def test_three_threads_json_gives_one_whole_record_per_index_with_failures_mixed_in(tmp):
    run_threads(tmp, 3)


def check_saved(tmp, urls, recs):
    files = set()
    for i, url in enumerate(urls):
        r = recs[i]
        if not r["ok"]:
            continue
        data = read_file_field(r, tmp)
        if "/ok?size=5000" in url:
            assert data == b"x" * 5000, "index %d: saved %d bytes" % (i, len(data))
        elif "/chunked" in url:
            assert data == scripted.CHUNKED_BODY, "index %d: saved %r" % (i, data[:80])
        elif "/close" in url:
            assert data == scripted.CLOSE_BODY, "index %d: saved %d bytes" % (i, len(data))
        files.add(os.path.realpath(os.path.join(tmp, r["file"])))
    assert len(files) == sum(1 for r in recs.values() if r["ok"]), "two records share a file"


def test_two_threads_json_with_output_dir_saves_each_body_once(tmp):
    outdir = os.path.join(tmp, "saved")
    check_saved(tmp, *run_threads(tmp, 2, outdir=outdir))


def test_three_threads_json_with_output_dir_saves_each_body_once(tmp):
    outdir = os.path.join(tmp, "saved")
    check_saved(tmp, *run_threads(tmp, 3, outdir=outdir))


def test_two_threads_over_tls_with_names_free_their_tls_and_dns_state(tmp):
    # Each thread's client has its own TLS context (CA chain, session cache)
    # and its own resolver channel ("localhost" is looked up); all of it must
    # be gone when the thread ends.  The failures are a refused port.
    from harness import Nginx
    from tls_helpers import certs_in
    certs = certs_in(tmp)
    refused = free_port()
    with Nginx(tmp, ssl=(certs["good"], certs.key), big_files=False) as ng:
        good = ["https://localhost:%d/1k.bin?i=%d" % (ng.port, i) for i in range(12)]
        bad = ["https://localhost:%d/?i=%d" % (refused, i) for i in range(4)]
        urls = [u for pair in zip(good[:4], bad) for u in pair] + good[4:]
        res = run_volley(["--json", "-t", "2", "-c", "4", "--cacert", certs.ca] + urls,
                         env={"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""}, timeout=60)
    recs = res.by_index(len(urls))
    for i, url in enumerate(urls):
        r = check_record(recs[i], url)
        assert r["ok"] is (url in good), "index %d (%s): %s" % (i, url, r)
        if r["ok"]:
            assert r["bytes"] == 1024, r
    assert res.rc == 1, res.describe("exit 1: the refused fetches fail")

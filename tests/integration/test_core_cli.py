"""The CLI and JSON contract (DESIGN.md): records, indexes, input forms, exit
statuses, usage errors, default output, --fail, -o, invalid URLs, -v."""
import os
import re

from harness import (Nginx, ScriptedServer, check_record, read_file_field, run_volley,
                     free_port)
import scripted

# Binary files: nginx does not gzip them, so this contract test does not
# depend on decoding (test_core_http covers that).
SIZES = {"1k.bin": 1024, "empty.bin": 0, "100k.bin": 100 * 1024}


def test_every_url_gets_one_record_with_contract_fields(tmp):
    with Nginx(tmp, big_files=False) as ng:
        urls = [ng.url("/" + name) for name in SIZES]
        res = run_volley(["--json"] + urls)
    assert res.rc == 0, res.describe("exit 0: every fetch succeeded")
    recs = res.by_index(len(urls))
    for i, name in enumerate(SIZES):
        r = check_record(recs[i], urls[i])
        assert r["ok"] is True and r["status"] == 200 and r["error"] is None, r
        assert r["bytes"] == SIZES[name], "bytes %d, expected %d: %s" % (
            r["bytes"], SIZES[name], r)
        assert r["redirects"] == 0 and r["final_url"] == urls[i], r
        assert r["attempts"] == 1, r
        t = r["timings"]
        assert 0 <= t["send_ms"] <= t["ttfb_ms"] <= t["total_ms"] <= r["time_ms"] + 1.0, (
            "timings out of order (send <= ttfb <= total <= time_ms): %s" % r)
        assert t["queue_ms"] >= 0, r


def test_record_time_ms_covers_a_slow_response(tmp):
    with ScriptedServer(tmp) as s:
        r = check_record(run_volley(["--json", s.url("/slow?ms=400")]).one())
    assert r["ok"] and r["time_ms"] >= 400, "time_ms %.1f for a 400 ms response" % r["time_ms"]
    ttfb = r["timings"]["ttfb_ms"]
    assert ttfb is not None and ttfb >= 390, "ttfb_ms %s for a 400 ms wait" % ttfb
    assert r["time_ms"] < 5000, r


def test_duplicate_urls_each_get_their_own_record(tmp):
    with Nginx(tmp, big_files=False) as ng:
        url = ng.url("/1k.bin")
        res = run_volley(["--json", "-c", "3"] + [url] * 7)
    recs = res.by_index(7)
    assert all(r["url"] == url and r["ok"] and r["bytes"] == 1024 for r in recs.values()), recs


def test_input_file_skips_blank_lines_and_comments(tmp):
    with Nginx(tmp, big_files=False) as ng:
        urls = [ng.url("/1k.bin"), ng.url("/empty.bin"), ng.url("/100k.bin")]
        path = os.path.join(tmp, "urls.txt")
        with open(path, "w") as f:
            f.write("# a comment first\n\n%s\n   \n# another comment\n%s\n\n\n%s\n# trailing\n"
                    % tuple(urls))
        res = run_volley(["--json", "-i", path])
    recs = res.by_index(3)
    assert [recs[i]["url"] for i in range(3)] == urls, [recs[i]["url"] for i in range(3)]
    assert [recs[i]["bytes"] for i in range(3)] == [1024, 0, 102400], recs
    assert res.rc == 0, res.describe("exit 0")


def test_input_from_stdin(tmp):
    with Nginx(tmp, big_files=False) as ng:
        urls = [ng.url("/1k.bin?n=%d" % i) for i in range(5)]
        res = run_volley(["--json", "-i", "-"], input="# header\n" + "\n".join(urls) + "\n")
    recs = res.by_index(5)
    assert [recs[i]["url"] for i in range(5)] == urls, recs
    assert all(r["ok"] for r in recs.values()) and res.rc == 0, (
        res.describe("every URL to succeed"))


def test_input_file_without_final_newline_and_with_crlf(tmp):
    with Nginx(tmp, big_files=False) as ng:
        urls = [ng.url("/1k.bin"), ng.url("/empty.bin")]
        path = os.path.join(tmp, "urls.txt")
        with open(path, "wb") as f:
            f.write(("%s\r\n\r\n%s" % tuple(urls)).encode())
        res = run_volley(["--json", "-i", path])
    recs = res.by_index(2)
    assert [recs[i]["url"] for i in range(2)] == urls, (
        "CR or missing final newline mishandled: %s" % recs)
    assert all(r["ok"] for r in recs.values()), res.describe("every URL to succeed")


def test_exit_status_1_when_any_url_failed(tmp):
    with Nginx(tmp, big_files=False) as ng:
        res = run_volley(["--json", ng.url("/1k.bin"), "http://127.0.0.1:%d/" % free_port()])
    recs = res.by_index(2)
    assert recs[0]["ok"] is True and recs[1]["ok"] is False, recs
    assert res.rc == 1, res.describe("exit 1: one URL failed")


def test_usage_errors_exit_2_with_message_and_no_stdout(tmp):
    url = "http://127.0.0.1:%d/" % free_port()
    cases = [["--no-such-option", url], ["-c", "0", url], ["-c", "abc", url], ["-c"],
             ["--json", "-c"], ["--per-host", "x", url], ["--timeout", "soon", url],
             ["--max-redirs", "-3", url], []]
    for args in cases:
        res = run_volley(args, timeout=10)
        assert res.rc == 2, "volley %s: expected exit 2 (usage)\n%s" % (args, res.describe())
        assert res.stderr.strip(), "volley %s: no message on stderr" % args
        assert res.stdout == "", "volley %s: usage error printed on stdout: %r" % (
            args, res.stdout)


def test_missing_input_file_is_an_error_with_a_message(tmp):
    path = os.path.join(tmp, "no-such-list.txt")
    res = run_volley(["--json", "-i", path], timeout=10)
    assert res.rc == 2, res.describe("exit 2 for an unreadable -i file")
    assert "no-such-list.txt" in res.stderr, "message should name the file: %r" % res.stderr
    assert res.stdout == "", res.describe("nothing on stdout")


def test_help_and_version(tmp):
    res = run_volley(["--help"], timeout=10)
    assert res.rc == 0 and "--json" in res.stdout + res.stderr, res.describe(
        "exit 0 and usage naming --json")
    res = run_volley(["--version"], timeout=10)
    assert res.rc == 0 and "0.1.0" in res.stdout + res.stderr, res.describe(
        "exit 0 and 0.1.0")


def test_default_output_is_a_line_per_url_and_a_summary_on_stderr(tmp):
    with Nginx(tmp, big_files=False) as ng:
        urls = [ng.url("/1k.bin"), ng.url("/empty.bin"), ng.url("/missing")]
        res = run_volley(urls)
    lines = [l for l in res.stdout.splitlines() if l.strip()]
    assert len(lines) == 3, "expected 3 stdout lines, got %d:\n%s" % (len(lines), res.stdout)
    for url in urls:
        matching = [l for l in lines if url in l]
        assert len(matching) == 1, "no single line for %s in:\n%s" % (url, res.stdout)
    assert any("404" in l for l in lines if "/missing" in l), res.stdout
    assert not any(l.lstrip().startswith("{") for l in lines), (
        "JSON without --json:\n" + res.stdout)
    assert res.stderr.strip(), "no summary on stderr"
    assert "3" in res.stderr, "summary does not mention the 3 URLs: %r" % res.stderr
    assert res.rc == 0, res.describe("exit 0")


def test_http_404_is_ok_unless_fail_is_given(tmp):
    with Nginx(tmp, big_files=False) as ng:
        url = ng.url("/no-such-file")
        plain = run_volley(["--json", url])
        failing = run_volley(["--json", "--fail", url])
    r = check_record(plain.one(), url)
    assert r["ok"] is True and r["status"] == 404 and plain.rc == 0, (
        plain.describe("ok=true, status 404, exit 0 without --fail"))
    r = check_record(failing.one(), url)
    assert r["ok"] is False and r["status"] == 404 and failing.rc == 1, (
        failing.describe("ok=false, status 404, exit 1 with --fail"))
    assert "404" in r["error"], "error should name the status: %r" % r["error"]


def test_invalid_urls_get_error_records_and_valid_ones_are_fetched(tmp):
    with Nginx(tmp, big_files=False) as ng:
        good = ng.url("/1k.bin")
        urls = [good, "ftp://x", "http://", "http://[::1", "not a url",
                "http://127.0.0.1:70000/", good]
        path = os.path.join(tmp, "urls.txt")
        with open(path, "w") as f:
            f.write("\n".join(urls) + "\n")
        res = run_volley(["--json", "-i", path])
    recs = res.by_index(len(urls))
    for i in (0, 6):
        assert recs[i]["ok"] is True and recs[i]["bytes"] == 1024, recs[i]
    for i in range(1, 6):
        r = check_record(recs[i], urls[i])
        assert r["ok"] is False and r["status"] in (0, None), r
        assert r["error"].startswith("url:"), (
            "index %d: error should start with 'url:': %s" % (i, r))
    assert "scheme" in recs[1]["error"], recs[1]
    assert "port" in recs[5]["error"], recs[5]
    assert res.rc == 1, res.describe("exit 1")


def test_output_dir_saves_each_body_and_names_it(tmp):
    outdir = os.path.join(tmp, "saved")
    with Nginx(tmp) as ng, ScriptedServer(tmp) as s:
        urls = [ng.url("/1k.bin"), ng.url("/empty.bin"), ng.url("/10m.bin"), s.url("/chunked")]
        res = run_volley(["--json", "-o", outdir] + urls, cwd=tmp)
    recs = res.by_index(len(urls))
    expected = [Nginx.content("1k.bin"), b"", Nginx.content("10m.bin"), scripted.CHUNKED_BODY]
    files = set()
    for i, body in enumerate(expected):
        assert recs[i]["ok"], recs[i]
        data = read_file_field(recs[i], tmp)
        assert data == body, "index %d: saved %d bytes, expected %d" % (i, len(data), len(body))
        files.add(os.path.realpath(os.path.join(tmp, recs[i]["file"])))
    assert len(files) == len(urls), "two records share a file: %s" % files
    assert all(f.startswith(os.path.realpath(outdir)) for f in files), files


def test_output_dir_leaves_no_file_for_a_failed_fetch(tmp):
    outdir = os.path.join(tmp, "saved")
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-o", outdir, s.url("/truncated-cl")], cwd=tmp)
    r = res.one()
    assert r["ok"] is False, r
    if r.get("file"):
        path = os.path.join(tmp, r["file"])
        assert not os.path.exists(path), "failed fetch left a partial body in %s" % path
    left = os.listdir(outdir) if os.path.isdir(outdir) else []
    assert not left, "failed fetch left files in -o dir: %s" % left


def test_verbose_traces_loop_iterations_and_state_changes(tmp):
    with Nginx(tmp, big_files=False) as ng:
        res = run_volley(["--json", "-v", ng.url("/1k.bin")])
    assert res.one()["ok"], res.describe("the fetch to succeed")
    err = res.stderr
    assert re.search(r"loop#\d+", err), "no 'loop#N' iteration lines on stderr:\n" + err[:2000]
    transitions = re.findall(r"fetch#\d+ ([A-Z_]+) -> ([A-Z_]+)", err)
    assert ("RESOLVING", "CONNECTING") in transitions, "no RESOLVING -> CONNECTING:\n" + err[:2000]
    states = [b for _, b in transitions]
    for state in ("SENDING", "AWAIT_HEADERS", "DONE"):
        assert state in states, "no transition to %s in: %s" % (state, transitions)
    assert res.stdout.count("\n") == 1, "trace leaked onto stdout:\n" + res.stdout[:500]

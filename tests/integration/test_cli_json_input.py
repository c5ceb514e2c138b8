"""--input-format json: each -i line a JSON object with url and optional
method, headers, body, index and id; a bad line gets an error record of its
own and never stops the run."""
import json
import os

from harness import ScriptedServer, headers_of, run_volley


def write_lines(tmp, lines):
    path = os.path.join(tmp, "in.jsonl")
    with open(path, "w") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
    return path


def test_json_input_echoes_ids_keeps_explicit_indexes_and_applies_requests(tmp):
    with ScriptedServer(tmp) as s:
        lines = [
            {"url": s.url("/echo/a"), "method": "PUT", "body": "h\u00e9llo",
             "headers": {"X-Line": "1", "X-Both": "line"}, "id": {"k": [1, "two"]}},
            "# a comment, not counted",
            "",
            {"url": s.url("/echo/b"), "index": 1000, "id": "shard-7",
             "headers": ["X-Multi: a", "X-Multi: b"]},
            {"url": s.url("/echo/c"), "id": None},
        ]
        path = write_lines(tmp, lines)
        res = run_volley(["--json", "--input-format", "json", "-i", path,
                          "-H", "X-Both: cli", "-H", "X-Cli: yes", "-X", "POST", "-d", "cli=1"])
        reqs = {r["target"]: r for r in s.requests()}
    assert res.rc == 0, res.describe("exit 0")
    by = res.by_index()
    assert sorted(by) == [0, 2, 1000], res.describe("indexes 0 (position), 1000 (explicit), 2")
    assert by[0]["id"] == {"k": [1, "two"]} and by[1000]["id"] == "shard-7", res.records
    assert "id" in by[2] and by[2]["id"] is None, by[2]
    a, b, c = reqs["/echo/a"], reqs["/echo/b"], reqs["/echo/c"]
    ha, hb, hc = headers_of(a), headers_of(b), headers_of(c)
    # the line's method, body and headers win; -H is added unless the line names it
    assert a["method"] == "PUT" and a["body"].encode("latin-1").decode() == "h\u00e9llo", a
    assert ha["x-both"] == ["line"] and ha["x-line"] == ["1"] and ha["x-cli"] == ["yes"], ha
    assert hb["x-multi"] == ["a", "b"] and hb["x-both"] == ["cli"], hb
    # a line without method/body takes -X and -d
    assert b["method"] == "POST" and b["body"] == "cli=1", b
    assert c["method"] == "POST" and hc["x-cli"] == ["yes"], c
    rec_keys = list(by[0].keys())
    assert rec_keys[-1] == "id" and rec_keys[:9] == ["index", "url", "ok", "status", "bytes",
                                                    "time_ms", "redirects", "final_url",
                                                    "error"], rec_keys


BAD_LINES = [
    ("not json at all", "invalid JSON"),
    ('{"url": "http://x/", ', "invalid JSON"),
    ("[1, 2]", "not a JSON object"),
    ('"http://x/"', "not a JSON object"),
    ('{"id": 5}', '"url" missing'),
    ('{"url": 7}', '"url" must be a string'),
    ('{"url": "http://127.0.0.1:1/", "index": -1}', '"index" must be'),
    ('{"url": "http://127.0.0.1:1/", "index": 1.5}', '"index" must be'),
    ('{"url": "http://127.0.0.1:1/", "method": 3}', '"method" must be'),
    ('{"url": "http://127.0.0.1:1/", "method": "GE T"}', '"method" must be'),
    ('{"url": "http://127.0.0.1:1/", "headers": "X: y"}', '"headers" must be'),
    ('{"url": "http://127.0.0.1:1/", "headers": {"X": 1}}', '"headers": each value'),
    ('{"url": "http://127.0.0.1:1/", "headers": [["X", "y"]]}', '"headers": each array'),
    ('{"url": "http://127.0.0.1:1/", "headers": {"X": "a\\r\\nB: c"}}', '"headers": each value'),
    ('{"url": "http://127.0.0.1:1/", "body": 12}', '"body" must be a string'),
    ('{"url": "http://127.0.0.1:1/", "url": "http://127.0.0.1:2/"}', "invalid JSON"),
]


def test_every_malformed_json_line_gets_its_own_error_record_with_threads(tmp):
    with ScriptedServer(tmp) as s:
        lines = []
        for i, (bad, _) in enumerate(BAD_LINES):
            lines.append(json.dumps({"url": s.url("/ok?i=%d" % i), "id": i}))
            lines.append(bad)
        path = write_lines(tmp, lines)
        res = run_volley(["--json", "--input-format", "json", "-i", path, "-t", "2", "-c", "4"])
    assert res.rc == 1, res.describe("exit 1 (some lines failed)")
    by = res.by_index(len(lines))
    for i, (bad, want) in enumerate(BAD_LINES):
        good, rec = by[2 * i], by[2 * i + 1]
        assert good["ok"] and good["id"] == i, good
        assert not rec["ok"] and rec["status"] is None, rec
        prefix = "input: line %d: " % (2 * i + 2)
        assert rec["error"].startswith(prefix + want), (
            "line %r: expected error %r, got %r" % (bad, prefix + want, rec["error"]))
    assert by[9]["id"] == 5 and by[9]["url"] == "", by[9]


def test_positional_urls_stay_plain_with_json_input(tmp):
    with ScriptedServer(tmp) as s:
        path = write_lines(tmp, [{"url": s.url("/ok?b")}])
        res = run_volley(["--json", "--input-format", "json", "-i", path, s.url("/ok?a")])
    assert res.rc == 0, res.describe("exit 0")
    by = res.by_index(2)
    assert by[0]["url"].endswith("/ok?a") and by[1]["url"].endswith("/ok?b"), res.records
    assert "id" not in by[0] and "id" not in by[1], res.records


def test_bad_input_format_is_a_usage_error(tmp):
    res = run_volley(["--input-format", "xml", "http://127.0.0.1:1/"])
    assert res.rc == 2 and "--input-format" in res.stderr, res.describe("exit 2")

"""--records FILE and --resume: the records file is the run's journal.  A
SIGKILL at any moment leaves whole lines and at most one torn last line;
--resume cuts the torn line away, skips every index whose last record is
ok, fetches the rest again, and refuses a file written for another input."""
import collections
import json
import os
import random
import re
import signal
import subprocess
import time

from harness import ScriptedServer, _volley_env, check_health, run_volley, timeout, volley_command


def read_records(path):
    """(header, records, raw text) of a records file."""
    with open(path, "rb") as f:
        raw = f.read()
    lines = raw.decode().split("\n")
    assert lines[-1] == "", "records file does not end with a newline: %r" % raw[-200:]
    parsed = [json.loads(line) for line in lines[:-1]]
    header, recs = parsed[0], parsed[1:]
    assert "volley_records" in header and "index" not in header, header
    assert all("index" in r and "volley_records" not in r for r in recs), "a second header"
    return header, recs, raw


def final_by_index(recs):
    last = {}
    for r in recs:
        last[r["index"]] = r
    return last


def url_list(s, n):
    return [s.url("/slow?ms=5&i=%d" % i) if i % 2 == 0 else s.url("/ok?i=%d" % i)
            for i in range(n)]


def fetched_indexes(reqs):
    out = collections.Counter()
    for r in reqs:
        m = re.search(r"[?&]i=(\d+)", r["target"])
        if m:
            out[int(m.group(1))] += 1
    return out


@timeout(120, valgrind=600)
def test_sigkill_rounds_then_resume_leave_one_final_ok_record_per_index(tmp):
    n = 3000
    rng = random.Random(12)
    with ScriptedServer(tmp) as s:
        urls = os.path.join(tmp, "urls.txt")
        with open(urls, "w") as f:
            f.write("# a long run\n" + "\n".join(url_list(s, n)) + "\n")
        rec = os.path.join(tmp, "records.jsonl")
        args = ["--records", rec, "-i", urls, "-c", "20"]
        kills = 0
        for rnd in range(6):
            before_ok = set()
            if os.path.exists(rec):
                if rnd == 2:  # a torn last line, as a SIGKILL mid-write leaves it
                    with open(rec, "ab") as f:
                        f.write(b'{"index":1,"url":"http://x/","ok":tr')
                _, recs, _ = read_records(rec) if rnd != 2 else (None, [], b"")
                before_ok = {i for i, r in final_by_index(recs).items() if r["ok"]}
            seen = len(s.requests())
            cmd = args + (["--resume"] if rnd else [])
            proc = subprocess.Popen(volley_command(cmd), env=_volley_env(None),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                if rnd < 5:
                    time.sleep(rng.uniform(0.03, 0.1))
                    kills += proc.poll() is None
                    proc.kill()
                out, err = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if rnd == 5:
                check_health(cmd, proc.returncode, err.decode("utf-8", "replace"))
                assert proc.returncode == 0, "final resume exit %s: %s" % (proc.returncode, err)
            assert out == b"", "--records wrote records to stdout too: %r" % out[:200]
            if rnd == 3:
                _, recs, raw = read_records(rec)
                assert b'"ok":tr\n' not in raw and not raw.endswith(b'"ok":tr'), "torn line kept"
            again = fetched_indexes(s.requests()[seen:])
            twice = sorted(set(again) & before_ok)
            assert not twice, "round %d fetched indexes that were already ok: %s" % (rnd, twice[:10])
        header, recs, raw = read_records(rec)
        reqs = s.requests()
    assert kills >= 3, "only %d of 5 runs were still running when killed" % kills
    final = final_by_index(recs)
    assert sorted(final) == list(range(n)), "indexes missing: %s" % sorted(set(range(n)) - set(final))[:10]
    bad = [r for r in final.values() if not r["ok"]]
    assert not bad, "final records not ok: %s" % bad[:3]
    oks = collections.Counter(r["index"] for r in recs if r["ok"])
    assert max(oks.values()) == 1, "an index has two ok records: %s" % oks.most_common(3)
    assert len(fetched_indexes(reqs)) == n


def test_resume_of_another_input_is_refused_with_exit_2(tmp):
    with ScriptedServer(tmp) as s:
        urls = os.path.join(tmp, "urls.txt")
        with open(urls, "w") as f:
            f.write("\n".join(url_list(s, 10)) + "\n")
        rec = os.path.join(tmp, "records.jsonl")
        first = run_volley(["--records", rec, "-i", urls])
        assert first.rc == 0, first.describe("exit 0")
        with open(urls, "a") as f:
            f.write(s.url("/ok?i=10") + "\n")
        res = run_volley(["--records", rec, "--resume", "-i", urls])
        assert res.rc == 2, res.describe("exit 2")
        assert "resume: records file was written for another input (" in res.stderr, res.stderr
        args = run_volley(["--records", rec, "--resume", s.url("/ok")])
        assert args.rc == 2 and "another input" in args.stderr, args.describe("exit 2")
        again = run_volley(["--records", rec, "-i", urls])
        assert again.rc == 2 and "--resume" in again.stderr, again.describe("exit 2: file exists")
        _, recs, _ = read_records(rec)
    assert len(recs) == 10, "a refused run changed the file: %d records" % len(recs)


def test_resume_refetches_failed_indexes_and_exit_status_follows_the_final_records(tmp):
    with ScriptedServer(tmp) as s:
        lines = [json.dumps({"url": s.url("/ok?i=0"), "id": "a"}),
                 json.dumps({"url": s.url("/ok?i=1"), "index": 1})]
        urls = os.path.join(tmp, "in.jsonl")
        with open(urls, "w") as f:
            f.write("\n".join(lines) + "\n")
        rec = os.path.join(tmp, "records.jsonl")
        res = run_volley(["--records", rec, "--input-format", "json", "-i", urls, "--fail",
                          "-H", "X-Fail: 1"])
        assert res.rc == 0, res.describe("exit 0")
        # forge a failure as the last record of index 1: resume must fetch it again
        with open(rec, "a") as f:
            f.write(json.dumps({"index": 1, "url": "u", "ok": False, "error": "boom"}) + "\n")
        seen = len(s.requests())
        res = run_volley(["--records", rec, "--resume", "--input-format", "json", "-i", urls])
        assert res.rc == 0, res.describe("exit 0: every index has an ok record now")
        again = fetched_indexes(s.requests()[seen:])
        header, recs, _ = read_records(rec)
    assert dict(again) == {1: 1}, "resume should fetch exactly index 1 again, fetched %s" % again
    final = final_by_index(recs)
    assert final[1]["ok"] and final[0]["id"] == "a", recs
    assert len(recs) == 4, recs


def test_records_via_stdin_is_fingerprinted_and_resumable(tmp):
    with ScriptedServer(tmp) as s:
        text = "\n".join(url_list(s, 20)) + "\n"
        rec = os.path.join(tmp, "records.jsonl")
        res = run_volley(["--records", rec, "-i", "-"], input=text)
        assert res.rc == 0 and res.stdout == "", res.describe("exit 0, nothing on stdout")
        header, recs, _ = read_records(rec)
        assert header["input"]["size"] is None and len(recs) == 20, header
        seen = len(s.requests())
        res = run_volley(["--records", rec, "--resume", "-i", "-"], input=text)
        assert res.rc == 0 and len(s.requests()) == seen, res.describe("nothing fetched again")
        res = run_volley(["--records", rec, "--resume", "-i", "-"], input=text + s.url("/ok\n"))
        assert res.rc == 2 and "another input" in res.stderr, res.describe("exit 2")


def test_resume_needs_records(tmp):
    res = run_volley(["--resume", "http://127.0.0.1:1/"])
    assert res.rc == 2 and "--records" in res.stderr, res.describe("exit 2")

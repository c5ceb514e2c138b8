"""The fuzz harnesses (tests/fuzz/) without libFuzzer: each is also built
with the suite's compiler and flags (make asan: ASan+UBSan) and
tests/fuzz/replay_main.c, and run here over its seed corpus and its
regressions (crash inputs that must never crash again)."""
import glob
import os
import subprocess

from harness import SANITIZER_MARKERS, VALGRIND, _volley_env, under_valgrind

FUZZ_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fuzz")


def replay_bins():
    build = os.environ.get("VOLLEY_BUILD", "build")
    bins = sorted(glob.glob(os.path.join(build, "fuzz-replay", "fuzz_*")))
    assert bins, "no replay binaries in %s/fuzz-replay (make unit-bins builds them)" % build
    return {os.path.basename(b)[len("fuzz_"):]: b for b in bins}


def replay(binary, paths):
    cmd = ([] if not under_valgrind() else VALGRIND) + [binary] + paths
    env = _volley_env({})
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       stdin=subprocess.DEVNULL, timeout=120 * (5 if under_valgrind() else 1))
    err = p.stderr.decode("utf-8", "replace")
    broken = p.returncode != 0 or any(m in err for m in SANITIZER_MARKERS)
    return broken, p.returncode, err


def test_every_corpus_and_regression_input_replays_cleanly_through_its_harness():
    bins = replay_bins()
    for name in os.listdir(os.path.join(FUZZ_DIR, "corpus")):
        if os.path.isdir(os.path.join(FUZZ_DIR, "corpus", name)) and name not in bins:
            raise AssertionError("tests/fuzz/corpus/%s has no replay binary" % name)
    ran = 0
    for name, binary in bins.items():
        dirs = [d for d in (os.path.join(FUZZ_DIR, "corpus", name),
                            os.path.join(FUZZ_DIR, "regressions", name)) if os.path.isdir(d)]
        assert dirs, "fuzz_%s has neither a corpus nor regressions" % name
        broken, rc, err = replay(binary, dirs)
        assert not broken, "fuzz_%s over %s: exit %d\n%s" % (name, dirs, rc, err[-4000:])
        ran += err.count("replay: ")
    assert ran >= 5 * len(bins), "only %d inputs replayed" % ran


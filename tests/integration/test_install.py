"""make install / make uninstall into a staging DESTDIR, and a program built
with nothing but `pkg-config --cflags --libs volley` against what was
installed: the complete example of docs/volley.3, and tools/examples/embed_poll.c.

The install uses the build the suite runs (VOLLEY_BUILD), so nothing is
rebuilt; when that build is sanitized, the programs get the same sanitizer
flags (they could not load a sanitized library otherwise)."""
import json
import os
import re
import shutil
import subprocess

from harness import Nginx, free_port, timeout, volley_bin

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "/usr/local"
INSTALLED = ["bin/volley", "lib/libvolley.so.0.1.0", "lib/libvolley.so.0", "lib/libvolley.so",
             "lib/libvolley.a", "include/volley.h", "lib/pkgconfig/volley.pc",
             "share/man/man1/volley.1", "share/man/man3/volley.3", "bin/volley-dask"]


def build_dir():
    return os.environ.get("VOLLEY_BUILD") or os.path.dirname(volley_bin())


def run(cmd, env=None, timeout_s=120, cwd=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=timeout_s, cwd=cwd)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    return p.returncode, out, err


def must(cmd, **kw):
    rc, out, err = run(cmd, **kw)
    assert rc == 0, "expected exit 0 from %s, got %d:\n%s%s" % (" ".join(cmd), rc, out[-2000:],
                                                                err[-2000:])
    return out


def make(target, dest):
    return must(["make", "--no-print-directory", "-C", REPO, target, "PREFIX=" + PREFIX,
                 "DESTDIR=" + dest, "BUILD=" + build_dir()], timeout_s=300)


def sanitizer_flags():
    """The -fsanitize flags the library was built with, if any."""
    rc, out, _ = run(["readelf", "-d", os.path.join(build_dir(), "libvolley.so")])
    if rc == 0 and "libasan" in out:
        return ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    return []


def pkg_env(dest):
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.path.join(dest + PREFIX, "lib", "pkgconfig")
    env["PKG_CONFIG_SYSROOT_DIR"] = dest
    env["PKG_CONFIG_LIBDIR"] = "/usr/lib/x86_64-linux-gnu/pkgconfig:/usr/lib/pkgconfig:" \
                               "/usr/share/pkgconfig"
    return env


def man_example(path):
    """The C program between .EX and .EE in the EXAMPLE section, unescaped."""
    with open(path) as f:
        text = f.read()
    section = text.split("\n.SH EXAMPLE\n", 1)[1].split("\n.SH ", 1)[0]
    body = section.split("\n.EX\n", 1)[1].split("\n.EE", 1)[0]
    return body.replace("\\-", "-").replace("\\e", "\\") + "\n"


@timeout(240)
def test_install_then_build_and_run_with_only_pkg_config_then_uninstall(tmp):
    dest = os.path.join(tmp, "stage")
    make("install", dest)
    root = dest + PREFIX
    for rel in INSTALLED:
        assert os.path.lexists(os.path.join(root, rel)), "make install did not install %s" % rel
    lib = os.path.join(root, "lib")
    assert os.readlink(os.path.join(lib, "libvolley.so.0")) == "libvolley.so.0.1.0"
    assert os.readlink(os.path.join(lib, "libvolley.so")) == "libvolley.so.0"
    dyn = must(["readelf", "-d", os.path.join(lib, "libvolley.so.0.1.0")])
    assert re.search(r"SONAME\).*\[libvolley\.so\.0\]", dyn), "soname is not libvolley.so.0:\n" + dyn
    # Exactly the functions volley.h declares are exported: internal names
    # and the llhttp inside would clash with a program's own otherwise.
    syms = must(["nm", "-D", "--defined-only", os.path.join(lib, "libvolley.so.0.1.0")])
    exported = {l.split()[-1].split("@")[0] for l in syms.splitlines()
                if l.strip() and l.split()[1] in "TtWwDdBbRr"}
    with open(os.path.join(root, "include", "volley.h")) as f:
        declared = set(re.findall(r"^(?!typedef)[a-z].*?[ *](vl_[a-z0-9_]+)\(", f.read(), re.M))
    assert len(declared) > 30, "too few functions found in volley.h: %s" % sorted(declared)
    assert exported == declared, "exported but not declared: %s; declared but not exported: %s" % (
        sorted(exported - declared), sorted(declared - exported))
    with open(os.path.join(lib, "pkgconfig", "volley.pc")) as f:
        pc = f.read()
    for field in ("Version: 0.1.0", "Requires.private:", "Libs.private:", "-lmbedtls"):
        assert field in pc, "volley.pc lacks %r:\n%s" % (field, pc)
    must([os.path.join(root, "bin", "volley"), "--version"],
         env=dict(os.environ, LD_LIBRARY_PATH=lib))

    env = pkg_env(dest)
    flags = must(["pkg-config", "--cflags", "--libs", "volley"], env=env).split()
    assert "-I%s/include" % root in flags and "-lvolley" in flags, flags
    static_libs = must(["pkg-config", "--static", "--libs", "volley"], env=env).split()
    src = os.path.join(tmp, "fetch.c")
    with open(src, "w") as f:
        f.write(man_example(os.path.join(REPO, "docs", "volley.3")))
    san = sanitizer_flags()
    cc = os.environ.get("CC", "cc")
    programs = {
        "fetch": [cc, "-std=c11", "-Wall", "-Wextra", "-Werror"] + san
                 + ["-o", os.path.join(tmp, "fetch"), src] + flags,
        # The same against the static library, with the private dependencies.
        "fetch-static": [cc, "-std=c11"] + san + ["-o", os.path.join(tmp, "fetch-static"), src,
                         "-I%s/include" % root, os.path.join(lib, "libvolley.a")] + static_libs,
        "embed_poll": [cc, "-std=c11", "-Wall", "-Wextra", "-Werror"] + san
                      + ["-o", os.path.join(tmp, "embed_poll"),
                         os.path.join(REPO, "tools", "examples", "embed_poll.c")] + flags,
    }
    for name, cmd in programs.items():
        must(cmd, env=env)
    run_env = dict(os.environ, LD_LIBRARY_PATH=lib,
                   ASAN_OPTIONS="detect_leaks=1:verify_asan_link_order=0")
    ldd = must(["ldd", os.path.join(tmp, "fetch")], env=run_env)
    assert os.path.join(lib, "libvolley.so.0") in ldd, "fetch does not load the installed library:\n" + ldd
    with Nginx(tmp, big_files=False) as n:
        refused = "http://127.0.0.1:%d/" % free_port()
        for name in ("fetch", "fetch-static"):
            rc, out, err = run([os.path.join(tmp, name), n.url("/1k.bin"), n.url("/index.html"),
                                refused], env=run_env, timeout_s=30)
            lines = sorted(out.splitlines())
            assert rc == 1 and len(lines) == 3, "%s: expected 3 lines and exit 1, got %d:\n%s%s" % (
                name, rc, out, err)
            assert lines[0].startswith("200 1024 ") and lines[1].startswith("200 512 "), lines
            assert lines[2].startswith("ERR connect: connection refused"), lines
        rc, out, err = run([os.path.join(tmp, "embed_poll"), "-c", "10"]
                           + [n.url("/1k.bin?i=%d" % i) for i in range(100)],
                           env=run_env, timeout_s=60)
        assert rc == 0 and "100 fetched, 100 ok" in out, "embed_poll: exit %d\n%s%s" % (rc, out, err)
        # volley-dask runs the volley installed next to it (one shard, no Dask)
        urls = os.path.join(tmp, "urls.txt")
        with open(urls, "w") as f:
            f.write(n.url("/1k.bin") + "\n")
        vd = [os.path.join(root, "bin", "volley-dask"), "--out-dir", os.path.join(tmp, "vd")]
        shards = must(vd + ["-i", urls, "--shards", "1", "--prepare-only"]).split()
        assert shards == ["0"], shards
        rc, out, err = run(vd + ["--run-shard", "0"], env=run_env, timeout_s=60)
        assert rc == 0 and json.loads(out)["ok"] == 1, "volley-dask --run-shard: exit %d\n%s%s" % (
            rc, out, err)

    make("uninstall", dest)
    left = [os.path.join(d, f) for d, _, files in os.walk(dest) for f in files]
    left += [os.path.join(d, x) for d, dirs, _ in os.walk(dest) for x in dirs
             if os.path.islink(os.path.join(d, x))]
    assert not left, "make uninstall left files behind: %s" % left


@timeout(60)
def test_man_page_documents_every_option_of_help(tmp):
    rc, out, err = run([volley_bin(), "--help"])
    assert rc == 0, err
    options = sorted(set(re.findall(r"--[a-z][a-z-]+", out)))
    assert len(options) > 20, "too few options in --help: %s" % options
    with open(os.path.join(REPO, "docs", "volley.1")) as f:
        page = f.read().replace("\\-", "-")
    missing = [o for o in options if o not in page]
    assert not missing, "docs/volley.1 does not document %s" % missing
    for heading in ("EXIT STATUS", "JSON RECORD", "EXAMPLES"):
        assert ".SH " + heading in page, "docs/volley.1 has no %s section" % heading
    if shutil.which("man"):
        for page_path in ("volley.1", "volley.3"):
            rc, out, err = run(["man", "--warnings", "-l", os.path.join(REPO, "docs", page_path)],
                               env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0",
                                        PAGER="cat"))
            assert rc == 0 and not err.strip(), "man %s warns:\n%s" % (page_path, err[-2000:])

"""The README's embedding examples compile against the library and work."""
import os
import re
import subprocess

from harness import Nginx, TESTS_DIR

ROOT = os.path.dirname(TESTS_DIR)


def c_blocks():
    with open(os.path.join(ROOT, "README.md")) as f:
        return re.findall(r"```c\n(.*?)```", f.read(), re.S)


def build(tmp, i, src):
    build_dir = os.path.dirname(os.environ.get("VOLLEY_BIN", os.path.join(ROOT, "build", "volley")))
    path = os.path.join(tmp, "readme%d.c" % i)
    with open(path, "w") as f:
        f.write(src)
    exe = path[:-2]
    san = ["-fsanitize=address,undefined"] if "asan" in build_dir else []
    cmd = ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE"] + san + [
        "-I" + os.path.join(ROOT, "include"), path, os.path.join(build_dir, "libvolley.a"),
        "-lmbedtls", "-lmbedx509", "-lmbedcrypto", "-lcares", "-lz", "-lbrotlidec", "-lzstd",
        "-lidn2", "-lnghttp2", "-lpthread", "-o", exe]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "README example %d does not compile:\n%s" % (i, p.stderr)
    return exe


def test_readme_examples_compile_and_fetch(tmp):
    blocks = c_blocks()
    assert len(blocks) >= 2, "expected the two embedding examples in README.md"
    with Nginx(tmp, big_files=False) as ng:
        urls = [ng.url("/1k.bin"), ng.url("/empty.bin")]
        for i, src in enumerate(blocks):
            exe = build(tmp, i, src)
            p = subprocess.run([exe] + urls, capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, (i, p.returncode, p.stdout, p.stderr)
            for u in urls:
                assert u in p.stdout, "example %d did not report %s:\n%s" % (i, u, p.stdout)
            assert " 200 " in p.stdout, p.stdout

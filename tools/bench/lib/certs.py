"""certs.py: a throwaway test CA and one server certificate (openssl CLI).

ECDSA P-256 keys (what most servers use today; cheap handshakes for every
client alike).  The leaf names every host the scenarios use, so each client
verifies the chain and the host name against the test CA and nothing else.
"""
import os
import subprocess

OPENSSL_TIMEOUT_S = 60

LEAF_EXT = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {sans}
"""


def _openssl(args, cwd):
    subprocess.run(["openssl"] + args, cwd=cwd, check=True, timeout=OPENSSL_TIMEOUT_S,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certs(directory, hostnames):
    """Writes ca.pem, server.pem (leaf + CA chain), server.key into directory.
    Returns {"ca": path, "cert": path, "key": path}."""
    os.makedirs(directory, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    _openssl(["req", "-x509", "-nodes", *ec, "-keyout", "ca.key", "-out", "ca.pem",
              "-days", "7", "-subj", "/CN=volley bench throwaway CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], directory)
    _openssl(["req", "-new", "-nodes", *ec, "-keyout", "server.key", "-out", "server.csr",
              "-subj", "/CN=localhost"], directory)
    sans = ",".join(["DNS:localhost", "IP:127.0.0.1"] + ["DNS:" + h for h in hostnames])
    with open(os.path.join(directory, "leaf.ext"), "w") as f:
        f.write(LEAF_EXT.format(sans=sans))
    _openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
              "-CAcreateserial", "-days", "7", "-sha256", "-extfile", "leaf.ext",
              "-out", "leaf.pem"], directory)
    with open(os.path.join(directory, "server.pem"), "w") as out:
        for name in ("leaf.pem", "ca.pem"):
            with open(os.path.join(directory, name)) as f:
                out.write(f.read())
    return {"ca": os.path.join(directory, "ca.pem"),
            "cert": os.path.join(directory, "server.pem"),
            "key": os.path.join(directory, "server.key")}

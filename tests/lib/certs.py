#!/usr/bin/env python3
"""certs.py: throwaway certificates for volley's TLS tests (stdlib + the openssl CLI).

    make_certs(dir) -> Certs        (in Python)
    python3 tests/lib/certs.py DIR  (prints the same as JSON: name -> path)

Everything is made fresh under DIR (nothing is cached, nothing trusted outside
it).  One RSA key serves every leaf, which keeps generation near half a second.

    ca                  the test CA's certificate (what --cacert is given)
    ca2                 a second CA that nobody trusts
    good / good_key     signed by ca; SAN DNS:localhost, DNS:a.test .. DNS:e.test,
                        IP:127.0.0.1, IP:::1; valid from a day ago for 30 days
    expired             signed by ca, same names, valid 2020-01-01 .. 2020-12-31
    future              signed by ca, same names, valid from 2090 (not yet valid)
    wronghost           signed by ca; SAN DNS:wrong.test only (no IP either)
    selfsigned          self-signed; SAN DNS:localhost, IP:127.0.0.1
    unknown_ca          signed by ca2; SAN DNS:localhost, IP:127.0.0.1
    key                 the private key of every leaf (good_key is the same file)
Leaf certificate files hold only the leaf (the CA is not appended).
"""
import datetime
import json
import os
import subprocess
import sys

GOOD_SANS = ["DNS:localhost", "DNS:a.test", "DNS:b.test", "DNS:c.test", "DNS:d.test",
             "DNS:e.test", "IP:127.0.0.1", "IP:::1"]
LOCAL_SANS = ["DNS:localhost", "IP:127.0.0.1"]
OPENSSL_TIMEOUT_S = 60

CA_CONF = """\
[ ca ]
default_ca = testca
[ testca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

LEAF_EXT = """\
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {sans}
"""


class Certs(dict):
    """name -> path; attribute access too (certs.good, certs.ca)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)


def _openssl(*args, cwd=None):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=OPENSSL_TIMEOUT_S,
                       stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d): %s" % (" ".join(args), p.returncode,
                                                           p.stderr.decode("utf-8", "replace")))
    return p.stdout


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def _rsa_key(path):
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)


def _make_ca(d, name, cn):
    """A CA directory d/name with ca.crt, ca.key and openssl ca's bookkeeping."""
    cadir = os.path.join(d, name)
    os.makedirs(os.path.join(cadir, "newcerts"), exist_ok=True)
    _write(os.path.join(cadir, "index.txt"), "")
    _write(os.path.join(cadir, "serial"), "1000\n")
    conf = os.path.join(cadir, "ca.cnf")
    _write(conf, CA_CONF.format(dir=cadir))
    key, crt = os.path.join(cadir, "ca.key"), os.path.join(cadir, "ca.crt")
    _rsa_key(key)
    _openssl("req", "-config", conf, "-new", "-x509", "-key", key, "-out", crt, "-days", "3650",
             "-subj", "/CN=%s" % cn, "-extensions", "v3_ca", "-sha256")
    return cadir


def _stamp(t):
    return t.strftime("%Y%m%d%H%M%SZ")


def _sign(d, cadir, name, key, cn, sans, start, end):
    """A leaf d/name.crt for key, signed by the CA in cadir, valid start..end (datetimes)."""
    csr = os.path.join(d, name + ".csr")
    crt = os.path.join(d, name + ".crt")
    ext = os.path.join(d, name + ".ext")
    _write(ext, LEAF_EXT.format(sans=",".join(sans)))
    conf = os.path.join(cadir, "ca.cnf")
    _openssl("req", "-config", conf, "-new", "-key", key, "-subj", "/CN=%s" % cn, "-out", csr)
    _openssl("ca", "-batch", "-config", conf, "-notext", "-md", "sha256",
             "-cert", os.path.join(cadir, "ca.crt"), "-keyfile", os.path.join(cadir, "ca.key"),
             "-startdate", _stamp(start), "-enddate", _stamp(end),
             "-extfile", ext, "-extensions", "leaf", "-in", csr, "-out", crt)
    return crt


def _self_signed(d, name, key, cn, sans):
    crt = os.path.join(d, name + ".crt")
    conf = os.path.join(d, name + ".cnf")
    _write(conf, "[ req ]\ndistinguished_name = dn\nprompt = no\n[ dn ]\nCN = %s\n" % cn +
           LEAF_EXT.format(sans=",".join(sans)).replace("authorityKeyIdentifier = keyid\n", ""))
    _openssl("req", "-config", conf, "-new", "-x509", "-key", key, "-out", crt, "-days", "30",
             "-extensions", "leaf", "-sha256")
    return crt


def make_certs(d):
    """Create every certificate under directory d (created if needed); returns Certs."""
    d = os.path.abspath(str(d))
    os.makedirs(d, exist_ok=True)
    ca = _make_ca(d, "ca", "volley test CA")
    ca2 = _make_ca(d, "ca2", "volley unknown CA")
    key = os.path.join(d, "leaf.key")
    _rsa_key(key)
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    day = datetime.timedelta(days=1)
    c = Certs(ca=os.path.join(ca, "ca.crt"), ca2=os.path.join(ca2, "ca.crt"), key=key,
              good_key=key, dir=d)
    c["good"] = _sign(d, ca, "good", key, "localhost", GOOD_SANS, now - day, now + 30 * day)
    c["expired"] = _sign(d, ca, "expired", key, "localhost", GOOD_SANS,
                         datetime.datetime(2020, 1, 1), datetime.datetime(2020, 12, 31))
    c["future"] = _sign(d, ca, "future", key, "localhost", GOOD_SANS,
                        datetime.datetime(2090, 1, 1), datetime.datetime(2091, 1, 1))
    c["wronghost"] = _sign(d, ca, "wronghost", key, "wrong.test", ["DNS:wrong.test"],
                           now - day, now + 30 * day)
    c["unknown_ca"] = _sign(d, ca2, "unknown_ca", key, "localhost", LOCAL_SANS,
                            now - day, now + 30 * day)
    c["selfsigned"] = _self_signed(d, "selfsigned", key, "localhost", LOCAL_SANS)
    return c


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: certs.py DIR\n")
        return 2
    print(json.dumps(make_certs(sys.argv[1]), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

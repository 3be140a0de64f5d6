"""--check-config catches what would fail later (issue 13, point 6 in part): a `user`
that does not exist, a certificate that has expired or is not valid yet, one without its
key or with another's, and a warning 30 days before a certificate expires."""

import datetime
import os
import subprocess

import pytest

from conftest import FERRYD

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def make_cert(d, name, not_before, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferry.test")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(key, hashes.SHA256()))
    c, k = d / f"{name}.crt", d / f"{name}.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


def check(tmp_path, *args):
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    return subprocess.run([FERRYD, "--check-config", "--listen", "127.0.0.1:2121", "--root",
                           str(root), *map(str, args)], capture_output=True, text=True,
                          timeout=30)


NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def test_expired_certificate_is_refused_with_its_date(tmp_path):
    c, k = make_cert(tmp_path, "old", NOW - 400 * DAY, NOW - 2 * DAY)
    r = check(tmp_path, "--tls-cert", c, "--tls-key", k)
    assert r.returncode == 2, r
    expiry = (NOW - 2 * DAY).strftime("%Y-%m-%d")
    assert f"tls_cert: the certificate expired on {expiry}" in r.stderr, r.stderr


def test_certificate_not_valid_yet_is_refused(tmp_path):
    c, k = make_cert(tmp_path, "future", NOW + 3 * DAY, NOW + 400 * DAY)
    r = check(tmp_path, "--tls-cert", c, "--tls-key", k)
    assert r.returncode == 2, r
    assert "tls_cert: the certificate is not valid before " in r.stderr, r.stderr


def test_certificate_expiring_soon_is_a_warning(tmp_path):
    c, k = make_cert(tmp_path, "soon", NOW - 300 * DAY, NOW + 10 * DAY + datetime.timedelta(hours=2))
    r = check(tmp_path, "--tls-cert", c, "--tls-key", k)
    assert r.returncode == 0, r
    assert f"warning: tls_cert {c} expires in 10 days" in r.stderr, r.stderr
    fine, fine_key = make_cert(tmp_path, "fine", NOW - DAY, NOW + 300 * DAY)
    r = check(tmp_path, "--tls-cert", fine, "--tls-key", fine_key)
    assert r.returncode == 0 and "expires in" not in r.stderr, r.stderr


def test_key_missing_or_of_another_certificate(tmp_path):
    c, _ = make_cert(tmp_path, "a", NOW - DAY, NOW + 300 * DAY)
    _, other = make_cert(tmp_path, "b", NOW - DAY, NOW + 300 * DAY)
    r = check(tmp_path, "--tls-cert", c, "--tls-key", other)
    assert r.returncode == 2, r
    assert "tls_key does not match tls_cert: it is another certificate's key" in r.stderr, r.stderr
    r = check(tmp_path, "--tls-cert", c, "--tls-key", c)   # the certificate, not a key
    assert r.returncode == 2 and "tls_key: no private key in it" in r.stderr, r.stderr
    assert "error:" not in r.stderr, r.stderr              # words, not OpenSSL's codes


@pytest.mark.skipif(os.geteuid() != 0, reason="`user` is used only when started as root")
def test_user_that_does_not_exist(tmp_path):
    r = check(tmp_path, "--user", "no-such-account-ferry")
    assert r.returncode == 2, r
    assert "user no-such-account-ferry does not exist" in r.stderr, r.stderr

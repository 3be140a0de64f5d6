"""
vhost_certs: server certificates for virtual hosts (RFC 7151 HOST, TLS SNI), signed by the
test CA of ftptls.make_certs, so that a client trusting that CA verifies each host's name.
"""

import os

from ftptls import _issue


def host_cert(certs, name):
    """A server certificate CN=name, subjectAltName DNS:name, signed by certs.ca; returns
    (certificate path, key path), mode 0644 (ferryd reads them as 'nobody' on SIGHUP)."""
    ext = ["keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth",
           f"subjectAltName=DNS:{name}"]
    crt, key = _issue(certs.dir, f"host-{name}", name, certs.ca, certs.ca_key, ext)
    for f in (crt, key):
        os.chmod(f, 0o644)
    return crt, key

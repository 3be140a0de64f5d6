"""
pyftpd: a pyftpdlib server (Debian's python3-pyftpdlib) for the client tests, the second
server ferry must work with besides ferryd.  Run as a subprocess by conftest.py:

    pyftpd.py --port N --root DIR [--user NAME --password PW] [--no-mlsd] [--no-epsv]
              [--masquerade ADDR] [--permit-foreign] [--throttle BYTES_PER_S]
              [--tls CERT KEY]

Anonymous users may do everything in DIR; --user adds a user with the same rights.
--no-mlsd leaves MLSD/MLST out (so FEAT has no MLST and clients list with LIST),
--no-epsv leaves EPSV out (clients must fall back to PASV), --masquerade is the address
PASV announces, --throttle slows data connections both ways, --tls offers AUTH TLS.
"""

import argparse
import logging
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler
from pyftpdlib.servers import FTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--no-mlsd", action="store_true")
    ap.add_argument("--no-epsv", action="store_true")
    ap.add_argument("--masquerade")
    ap.add_argument("--permit-foreign", action="store_true")
    ap.add_argument("--throttle", type=int, default=0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    a = ap.parse_args()

    auth = DummyAuthorizer()
    auth.add_anonymous(a.root, perm="elradfmwMT")
    if a.user:
        auth.add_user(a.user, a.password, a.root, perm="elradfmwMT")

    base = FTPHandler
    if a.tls:
        from pyftpdlib.handlers import TLS_FTPHandler
        base = TLS_FTPHandler

    class Handler(base):
        pass

    Handler.authorizer = auth
    Handler.banner = "pyftpdlib ready."
    Handler.timeout = 60
    if a.tls:
        Handler.certfile = a.tls[0]
        Handler.keyfile = a.tls[1]
    drop = set()
    if a.no_mlsd:
        drop |= {"MLSD", "MLST"}
    if a.no_epsv:
        drop |= {"EPSV"}
    if drop:
        Handler.proto_cmds = {k: v for k, v in base.proto_cmds.items() if k not in drop}
    if a.masquerade:
        Handler.masquerade_address = a.masquerade
    Handler.permit_foreign_addresses = a.permit_foreign
    if a.throttle:
        class DTP(ThrottledDTPHandler):
            read_limit = a.throttle
            write_limit = a.throttle
        Handler.dtp_handler = DTP
        Handler.use_sendfile = False    # sendfile(2) would bypass the throttle

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    server = FTPServer((a.host, a.port), Handler)
    server.serve_forever(handle_exit=True)


if __name__ == "__main__":
    main()

"""Test certificates made with the openssl command line: a CA, server certificates for chosen
names, client certificates from the CA and from a rogue CA, an expired one."""
import subprocess
from pathlib import Path


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


class Pki:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = self._ca("ca", "Portico Test CA")
        self.rogue_ca = self._ca("rogue", "Rogue CA")

    def _ca(self, name, cn):
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={cn}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        return name

    def issue(self, name, cn, dns=(), email=None, ca=None, days=2, client=False, expired=False,
              both=False):
        """Returns (cert path, key path). `both`: usable as server and client certificate
        (etcd's gateway calls its own gRPC server with it)."""
        ca = ca or self.ca
        sans = [f"DNS:{d}" for d in dns] + ([f"email:{email}"] if email else [])
        ext = self.dir / f"{name}.ext"
        lines = ["basicConstraints=CA:FALSE",
                 "extendedKeyUsage=" + ("serverAuth,clientAuth" if both else
                                        "clientAuth" if client else "serverAuth")]
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        ext.write_text("\n".join(lines) + "\n")
        _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=self.dir)
        validity = ["-days", str(days)]
        if expired:
            # Valid yesterday only: -not_before/-not_after are not in OpenSSL 3.0's x509 -req.
            validity = ["-days", "1", "-set_serial", "7"]
        _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-extfile", f"{name}.ext", *validity,
             cwd=self.dir)
        return str(self.dir / f"{name}.pem"), str(self.dir / f"{name}.key")

    @property
    def ca_file(self):
        return str(self.dir / f"{self.ca}.pem")

    @property
    def rogue_ca_file(self):
        return str(self.dir / f"{self.rogue_ca}.pem")

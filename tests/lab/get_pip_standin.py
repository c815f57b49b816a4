# Stands in for get-pip.py (ci-files.testing.ansible.com is not reachable
# here): the interpreter's bundled pip, then pip itself from PyPI with the
# arguments ansible-test gives get-pip.py.
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap()
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
cert = "/etc/ssl/certs/ca-certificates.crt"
extra = ["--cert", cert] if os.path.exists(cert) else []
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + extra + args))

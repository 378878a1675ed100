# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Stand-in for the get-pip.py that ansible-test downloads from a host this machine cannot reach.

ansible-test runs ``python get_pip_<version>.py [pip options] pip==<version> [--no-setuptools] [--no-wheel]``
in each fresh virtual environment it creates. This bootstraps pip from the interpreter's own
``ensurepip``, then pip-installs the requested packages from the package index.
hack/setup.sh copies it to ~/.ansible/test/cache/get_pip_<version>.py.
"""

from __future__ import annotations

import ensurepip
import os
import subprocess
import sys

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main(argv: list[str]) -> int:
    ensurepip.bootstrap(upgrade=True, default_pip=True)
    args = [arg for arg in argv if arg not in GET_PIP_ONLY]
    command = [sys.executable, "-m", "pip", "install"] + args
    if os.path.exists(CA_BUNDLE):
        command += ["--cert", CA_BUNDLE]
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The supervisor's zip application: built from this package's sources and kept in a cache. Private to detached.jobs.

Every job's supervisor runs from a zip application (``python -I -S <jid>.pyz``) that holds the
supervisor and the module_utils it imports (_PYZ_MODULES). It is built once per host, user,
interpreter and version of the code and kept in the user's cache directory, outside the job
directory (see supervisor_pyz); _launch copies it next to each job. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys

from ansible_collections.detached.jobs.plugins.module_utils import _ids
from ansible_collections.detached.jobs.plugins.module_utils import _safepath as sp

_PKG = _ids.HOST_PACKAGE.replace(".", "/")

# The modules the supervisor's zip application holds (standard library only): the supervisor and
# what it imports, nothing else (it runs in a lean interpreter whose memory is benchmarked).
_PYZ_MODULES = _ids.host_files("supervisor")
# Where a built zip application is kept for the next launch, under the user's cache directory.
_CACHE_NAME = "detached.jobs"


def _module_source(name: str) -> str:
    """The source of one of this package's modules, without importing it (the supervisor is only shipped)."""
    fullname = f"{_PKG.replace('/', '.')}.{name}"
    module = sys.modules.get(fullname)
    spec = getattr(module, "__spec__", None) or importlib.util.find_spec(fullname)
    get_source = getattr(getattr(spec, "loader", None), "get_source", None)
    source = get_source(fullname) if get_source is not None else None
    if source is None:
        # An importer that has the source only once the module is loaded (Mitogen's), or none at
        # all: import it, ask its loader again, else read its file. This import is also what has
        # ansible-core's AnsiballZ ship the supervisor with the modules that launch jobs (it finds
        # the module_utils to ship by reading their imports).
        from ansible_collections.detached.jobs.plugins.module_utils import _supervisor

        module = module or (_supervisor if name == "_supervisor" else importlib.import_module(fullname))
        get_source = getattr(getattr(module, "__loader__", None), "get_source", None)
        source = get_source(fullname) if get_source is not None else None
        if source is None:
            with open(str(module.__file__), encoding="utf-8") as f:
                source = f.read()
    return source


_PYZ: dict[bool, bytes] = {}


def _build_pyz(sources: dict[str, str], compiled: bool) -> bytes:
    # Here, not at the top: a launch that finds the zip in the cache needs none of them.
    import io
    import marshal
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:

        def add(path: str, data: str | bytes) -> None:
            # A fixed date: the same code gives the same bytes (a build is reproducible).
            z.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)

        for pkg in (
            "ansible_collections",
            "ansible_collections/detached",
            "ansible_collections/detached/jobs",
            "ansible_collections/detached/jobs/plugins",
            _PKG,
        ):
            add(f"{pkg}/__init__.py", "")
        for name, source in sources.items():
            path = f"{_PKG}/{name}.py"
            if compiled:
                code = compile(source, path, "exec", dont_inherit=True)
                # an unchecked .pyc: magic, flags, mtime, size, code (PEP 552 layout)
                add(path + "c", importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code))
            else:
                add(path, source)
        add("__main__.py", f"from {_PKG.replace('/', '.')}._supervisor import main\nmain()\n")
    return buf.getvalue()


def supervisor_pyz(compiled: bool = True) -> bytes:
    """A zip application holding the supervisor and the module_utils it needs (stdlib only).

    compiled: ship bytecode for this interpreter instead of source (the supervisor then
    starts faster and stays about 1 MB smaller, as nothing is compiled in it).
    Built once per host, user, interpreter and version of the code, and kept in the user's
    cache directory (see _cache_dir): every launch in a fresh process (each task of the async
    keyword, each start) then reads it instead of compiling its modules.
    """
    if compiled not in _PYZ:
        sources = {name: _module_source(name) for name in _PYZ_MODULES}
        digest = hashlib.sha256(importlib.util.MAGIC_NUMBER if compiled else b"source")
        for name, source in sources.items():
            digest.update(f"\0{name}\0{source}".encode())
        cache = _cache_dir()
        path = os.path.join(cache, f"supervisor-{digest.hexdigest()[:40]}.pyz") if cache else None
        data = _read_cached(path) if path else None
        if data is None:
            data = _build_pyz(sources, compiled)
            if cache and path:
                _write_cached(cache, path, data)
        _PYZ[compiled] = data
    return _PYZ[compiled]


def _cache_dir() -> str | None:
    """$XDG_CACHE_HOME/detached.jobs (default ~/.cache/detached.jobs), or None when there is no home."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, _CACHE_NAME)


def _read_cached(path: str) -> bytes | None:
    """A cached zip application, or None when missing, not ours and private, or not a whole zip."""
    try:
        if sp.private_problem(os.lstat(os.path.dirname(path)), want_dir=True) is not None:
            return None
        fd = sp.open_private(path, "the supervisor's cache")
    except (OSError, _ids.JobError):  # (a cache that is not ours and private is not used: it is rebuilt)
        return None
    if fd is None:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            fd = -1
            data = f.read()
    except OSError:
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    # A whole zip ends with its end-of-central-directory record (22 bytes, no comment).
    return data if data[-22:-18] == b"PK\x05\x06" else None


def _write_cached(cache: str, path: str, data: bytes) -> None:
    """Keep data at path (atomically, 0600, in a 0700 directory); a cache that cannot be written is skipped."""
    try:
        os.makedirs(cache, mode=0o700, exist_ok=True)
        if sp.private_problem(os.lstat(cache), want_dir=True) is None:
            sp.atomic_write(path, data, "the supervisor's cache")
    except (OSError, _ids.JobError):
        pass

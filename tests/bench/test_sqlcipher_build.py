"""``benchmarks.common.sqlcipher_build``: which ``sqlcipher3`` build benchmark 6 measured
(its crypto library linked into the extension, or the system's shared ``libcrypto``),
checked against what the dynamic linker says of the extension itself."""

from __future__ import annotations

import shutil
import subprocess

import sqlcipher3.dbapi2  # noqa: F401 - the module whose extension is inspected
from sqlcipher3 import _sqlite3

from benchmarks.common import sqlcipher_build


def test_sqlcipher_build_names_the_cipher_and_where_its_crypto_comes_from():
    info = sqlcipher_build()
    assert "error" not in info, info
    assert info["cipher_version"].startswith("4."), info
    assert info["crypto"].startswith("OpenSSL"), info
    # Independent of the probe's /proc/self/maps: the extension's own NEEDED entries.
    ldd = shutil.which("ldd")
    assert ldd, "ldd (libc-bin) is missing"
    needed = subprocess.run([ldd, _sqlite3.__file__], capture_output=True, text=True,
                            check=True).stdout
    assert info["system_libcrypto"] is ("libcrypto.so" in needed), (info, needed)
    linked = "system's shared libcrypto" if info["system_libcrypto"] else "linked into"
    assert linked in info["summary"] and info["cipher_version"] in info["summary"]

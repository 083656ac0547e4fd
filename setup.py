"""Build description of the sharedb._lmdb extension.

The project metadata lives in pyproject.toml.  This file only says how to
compile the extension: the sources in csrc/ with every warning on, and
the vendored LMDB sources with upstream's code left as it is.  Both are
compiled with hidden symbol visibility, so the module's init function is
the only symbol the shared object exports and the vendored mdb_* symbols
cannot clash with another liblmdb loaded in the same process.
"""

import os
import sys
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

VENDOR_SOURCES = ["vendor/lmdb/mdb.c", "vendor/lmdb/midl.c"]


def is_msvc(compiler):
    return compiler.compiler_type == "msvc"


class BuildExt(build_ext):
    """Compile the vendored LMDB sources with their own flags.

    setuptools applies one set of flags to every source of an extension;
    LMDB's code is not ours to change, so it is compiled separately
    without our warning flags and linked in as extra objects.
    """

    def build_extension(self, ext):
        # LMDB's assertions abort the process; its own checks of pages
        # read from the file (patch 0003) return errors instead, so the
        # assertions stay compiled out even under a debug Python.
        if is_msvc(self.compiler):
            ext.extra_compile_args = ["/W3"]
            vendor_args = ["/DNDEBUG"]
        else:
            ext.extra_compile_args = [
                "-Wall",
                "-Wextra",
                "-fvisibility=hidden",
            ]
            vendor_args = [
                "-fvisibility=hidden",
                "-Wno-unused-parameter",
                # NDEBUG compiles out an assertion in mdb_page_dirty(),
                # the only reader of a variable there.
                "-Wno-unused-but-set-variable",
                "-DNDEBUG",
            ]
            if sys.platform.startswith("linux"):
                # Keeps symbols of the static objects out of the dynamic
                # symbol table even where a compiler ignores visibility.
                ext.extra_link_args = ["-Wl,--exclude-libs,ALL"]
        objects = self.compiler.compile(
            VENDOR_SOURCES,
            output_dir=self.build_temp,
            include_dirs=["vendor/lmdb"],
            debug=self.debug,
            extra_postargs=vendor_args,
        )
        ext.extra_objects = list(objects)
        super().build_extension(ext)


extension = Extension(
    "sharedb._lmdb",
    sources=sorted(glob(os.path.join("csrc", "*.c"))),
    include_dirs=["csrc", "vendor/lmdb"],
    depends=sorted(glob(os.path.join("csrc", "*.h")))
    + ["vendor/lmdb/lmdb.h", "vendor/lmdb/midl.h"]
    + VENDOR_SOURCES,
    libraries=["advapi32"] if sys.platform == "win32" else [],
)

setup(ext_modules=[extension], cmdclass={"build_ext": BuildExt})

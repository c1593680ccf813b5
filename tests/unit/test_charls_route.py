"""The CharLS-routing shim (orthanc-plugins/native/charls_route.c) in a miniature of Orthanc.

Orthanc's process holds two libraries that define ``JpegLsEncode``, ``JpegLsDecode`` and
``JpegLsReadHeader``: DCMTK's bundled ``libdcmtkcharls`` (loaded with the executable) and CharLS 2
(``libcharls.so.2``, loaded later with the GDCM plugin, for ``libgdcmMSFF``). The miniature has
the same shape, built here from C: a stand-in for each CharLS whose functions answer which one
they are, a ``libdcmjpls`` and a ``libgdcmMSFF`` that call them, an executable linked with DCMTK's
side that ``dlopen``s GDCM's side like a plugin. Without the shim both callers reach DCMTK's copy
(the defect); with it each reaches its own, whatever the callers' arguments.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "orthanc-plugins" / "native" / "charls_route.c"
FLAGS = ("-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror")

#: Each stand-in CharLS answers ``base + n`` for function n (encode 1, decode 2, read header 3)
#: and adds its fourth argument, so the test sees that arguments pass through unchanged.
CHARLS = """
#include <stdint.h>
#define F(name, n) int name(uintptr_t a, uintptr_t b, uintptr_t c, uintptr_t d) \\
    { (void) a; (void) b; (void) c; return BASE + n + (int) d; }
F(JpegLsEncode, 1) F(JpegLsDecode, 2) F(JpegLsReadHeader, 3)
"""
CALLER = """
#include <stdint.h>
int JpegLsEncode(uintptr_t, uintptr_t, uintptr_t, uintptr_t);
int JpegLsDecode(uintptr_t, uintptr_t, uintptr_t, uintptr_t);
int JpegLsReadHeader(uintptr_t, uintptr_t, uintptr_t, uintptr_t);
/* Like GDCM's and DCMTK's codecs, each caller uses the result (no tail call: see the shim). */
int PREFIX_encode(uintptr_t d) { volatile int r = JpegLsEncode(0, 0, 0, d); return r; }
int PREFIX_decode(uintptr_t d) { volatile int r = JpegLsDecode(0, 0, 0, d); return r; }
int PREFIX_header(uintptr_t d) { volatile int r = JpegLsReadHeader(0, 0, 0, d); return r; }
"""
MAIN = r"""
#include <dlfcn.h>
#include <stdio.h>
#include <stdint.h>
int dcmtk_encode(uintptr_t); int dcmtk_decode(uintptr_t); int dcmtk_header(uintptr_t);
int main(int argc, char **argv)
{
    (void) argc;
    void *gdcm = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);   /* the GDCM plugin's side */
    if (!gdcm) { fprintf(stderr, "%s\n", dlerror()); return 2; }
    int (*g[3])(uintptr_t) = {(int (*)(uintptr_t)) dlsym(gdcm, "gdcm_encode"),
                              (int (*)(uintptr_t)) dlsym(gdcm, "gdcm_decode"),
                              (int (*)(uintptr_t)) dlsym(gdcm, "gdcm_header")};
    printf("dcmtk %d %d %d\n", dcmtk_encode(10), dcmtk_decode(20), dcmtk_header(30));
    printf("gdcm %d %d %d\n", g[0](10), g[1](20), g[2](30));
    return 0;
}
"""


def _cc(*args: str | Path) -> None:
    subprocess.run(["cc", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def miniature(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cc") is None:
        pytest.fail("no C compiler: scripts/setup installs gcc")
    d = tmp_path_factory.mktemp("charls-route")
    (d / "charls.c").write_text(CHARLS)
    _cc(*FLAGS, "-DBASE=100", "-Wl,-soname,libdcmtkcharls.so.17", "-o", d / "libdcmtkcharls.so.17",
        d / "charls.c")
    _cc(*FLAGS, "-DBASE=200", "-Wl,-soname,libcharls.so.2", "-o", d / "libcharls.so.2", d / "charls.c")
    for name, charls, prefix in (("libdcmjpls.so.17", "libdcmtkcharls.so.17", "dcmtk"),
                                 ("libgdcmMSFF.so.3.0", "libcharls.so.2", "gdcm")):
        (d / f"{prefix}.c").write_text(CALLER.replace("PREFIX", prefix))
        _cc(*FLAGS, "-o", d / name, d / f"{prefix}.c", d / charls, f"-Wl,-rpath,{d}")
    (d / "main.c").write_text(MAIN)
    _cc("-O2", "-Wall", "-Werror", "-o", d / "orthanc", d / "main.c", d / "libdcmjpls.so.17",
        d / "libdcmtkcharls.so.17", f"-Wl,-rpath,{d}", "-ldl")
    _cc(*FLAGS, "-o", d / "libarchive-charls-route.so", SOURCE, "-ldl")
    return d


def _run(miniature: Path, preload: str | None) -> dict[str, list[int]]:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if preload:
        env["LD_PRELOAD"] = preload
    out = subprocess.run([str(miniature / "orthanc"), str(miniature / "libgdcmMSFF.so.3.0")],
                         env=env, check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: [int(n) for n in line.split()[1:]] for line in out.splitlines()}


def test_without_the_shim_gdcm_reaches_dcmtks_charls(miniature: Path) -> None:
    """The defect itself, reproduced: the first definition in the global scope wins."""
    assert _run(miniature, None) == {"dcmtk": [111, 122, 133], "gdcm": [111, 122, 133]}


def test_the_shim_gives_each_caller_its_own_charls(miniature: Path) -> None:
    routed = _run(miniature, str(miniature / "libarchive-charls-route.so"))
    assert routed == {"dcmtk": [111, 122, 133], "gdcm": [211, 222, 233]}


#: The real callers, on this machine (bookworm) and in the trixie root when it is installed.
CALLERS = ("libgdcmMSFF.so.3.0", "libdcmjpls.so.17", "libdcmjpls.so.19")
LIBDIRS = (Path("/usr/lib/x86_64-linux-gnu"),
           REPO / ".cache" / "trixie" / "root" / "usr" / "lib" / "x86_64-linux-gnu")


def test_the_real_callers_call_and_never_tail_jump() -> None:
    """The shim tells callers apart by the return address: a tail jump would hide the caller."""
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) is not installed")
    found = [d / name for d in LIBDIRS for name in CALLERS if (d / name).is_file()]
    assert any("gdcm" in p.name for p in found), "no libgdcmMSFF on this machine"
    for library in found:
        text = subprocess.run(["objdump", "-d", str(library)], check=True, capture_output=True,
                              text=True).stdout
        uses = [line.split("\t")[-1] for line in text.splitlines() if "<JpegLs" in line
                and "@plt>" in line and ("call" in line or "jmp" in line) and ":\tff 25" not in line]
        assert uses and all(use.startswith("call") for use in uses), f"{library}: {uses}"

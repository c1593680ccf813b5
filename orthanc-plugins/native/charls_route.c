/*
 * Preloaded into Orthanc (LD_PRELOAD) by the launcher, the tests and the container entrypoint.
 *
 * Two CharLS libraries live in one Orthanc process and export the same three C functions,
 * JpegLsEncode, JpegLsDecode and JpegLsReadHeader, with different signatures and structures:
 * DCMTK's bundled copy (libdcmtkcharls, CharLS 1.x as DCMTK modified it), which Orthanc itself
 * loads, and Debian's CharLS 2 (libcharls.so.2), which GDCM's libgdcmMSFF was built against and
 * which arrives later with the GDCM plugin. The dynamic linker binds every reference to the first
 * definition in the global scope, DCMTK's, so GDCM calls CharLS 1.x with CharLS 2 arguments:
 * every transcoding to JPEG-LS through GDCM crashes Orthanc (SIGSEGV), and GDCM's JPEG-LS
 * decoding reads garbage headers.
 *
 * This shim defines the three functions first in the global scope and forwards each call to the
 * library its caller was built against: a caller in a GDCM library gets CharLS 2, any other caller
 * (DCMTK's libdcmjpls) gets DCMTK's copy, exactly as without the shim. Both are looked up by
 * handle in the objects already loaded (dl_iterate_phdr: the sonames differ between Debian
 * releases), so nothing is loaded that was not there. If a library cannot be found the call
 * fails with a CharLS error code instead of running the wrong code.
 *
 * The forwarders pass the largest argument list of either ABI (JpegLsEncode: 7 for CharLS 2, 6
 * for DCMTK's) through unchanged; every argument is an integer or a pointer, so on x86-64 and
 * arm64 the callee sees exactly what its caller passed, and an unused trailing slot is ignored.
 * The caller is told by the return address, so it must call, not tail-jump: GDCM's JPEGLSCodec
 * and DCMTK's dcmjpls check the result of each call (tests/unit/test_charls_route.py builds the
 * same shape). See docs/decisions.md ("JPEG-LS and the two CharLS").
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

typedef uintptr_t word;
typedef int (*jls_fn)(word, word, word, word, word, word, word);

/* CharLS's "invalid parameters" (1 in both APIs): what a caller gets if no library is found. */
#define ROUTE_FAILED 1

enum library { DCMTK_CHARLS, CHARLS2, LIBRARY_COUNT };
enum function { ENCODE, DECODE, READ_HEADER, FUNCTION_COUNT };

static const char *const SONAME_PREFIX[LIBRARY_COUNT] = {"libdcmtkcharls.so", "libcharls.so"};
static const char *const SYMBOL[FUNCTION_COUNT] = {"JpegLsEncode", "JpegLsDecode",
                                                   "JpegLsReadHeader"};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static jls_fn resolved[LIBRARY_COUNT][FUNCTION_COUNT];

struct search {
    const char *prefix;
    char path[4096];
};

static int find_loaded(struct dl_phdr_info *info, size_t size, void *data)
{
    (void) size;
    struct search *search = data;
    const char *name = info->dlpi_name;
    const char *base = name ? strrchr(name, '/') : NULL;
    base = base ? base + 1 : name;
    if (base && strncmp(base, search->prefix, strlen(search->prefix)) == 0
            && strlen(name) < sizeof search->path) {
        strcpy(search->path, name);
        return 1;
    }
    return 0;
}

static jls_fn lookup(enum library library, enum function function)
{
    pthread_mutex_lock(&lock);
    jls_fn found = resolved[library][function];
    if (found == NULL) {
        struct search search = {SONAME_PREFIX[library], ""};
        if (dl_iterate_phdr(find_loaded, &search) == 1) {
            /* RTLD_NOLOAD: a reference to the object already mapped, never a new load. */
            void *handle = dlopen(search.path, RTLD_LAZY | RTLD_NOLOAD);
            if (handle != NULL) {
                found = (jls_fn) dlsym(handle, SYMBOL[function]);
                resolved[library][function] = found;
                dlclose(handle);  /* only drops the reference NOLOAD took */
            }
        }
    }
    pthread_mutex_unlock(&lock);
    return found;
}

/* Which CharLS the code at ``caller`` was linked against: GDCM's libraries use CharLS 2. */
static enum library library_of(const void *caller)
{
    Dl_info info;
    if (dladdr(caller, &info) != 0 && info.dli_fname != NULL) {
        const char *base = strrchr(info.dli_fname, '/');
        base = base ? base + 1 : info.dli_fname;
        if (strncmp(base, "libgdcm", 7) == 0) {
            return CHARLS2;
        }
    }
    return DCMTK_CHARLS;
}

static int forward(enum function function, const void *caller,
                   word a, word b, word c, word d, word e, word f, word g)
{
    jls_fn target = lookup(library_of(caller), function);
    return target ? target(a, b, c, d, e, f, g) : ROUTE_FAILED;
}

#define FORWARDER(name, function)                                                        \
    __attribute__((visibility("default"), noinline))                                     \
    int name(word a, word b, word c, word d, word e, word f, word g)                     \
    {                                                                                    \
        return forward(function, __builtin_return_address(0), a, b, c, d, e, f, g);      \
    }

FORWARDER(JpegLsEncode, ENCODE)
FORWARDER(JpegLsDecode, DECODE)
FORWARDER(JpegLsReadHeader, READ_HEADER)

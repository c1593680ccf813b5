/*
 * Preloaded into Orthanc (LD_PRELOAD) by scripts/serve and the tests.
 *
 * Debian's libcivetweb is built with a fixed 100 KiB stack for every HTTP worker thread
 * (civetweb's compile-time USE_STACK_SIZE, applied through pthread_attr_setstacksize). GDCM's
 * gdcm::ImageWriter::Write alone reserves about 130 KiB of stack, so each transcoding that
 * Orthanc's GDCM plugin does for a WADO-RS request runs past the end of the worker's stack: into
 * the guard page (Orthanc dies with SIGSEGV) or, silently, into a neighbouring thread's stack.
 * Raising every requested thread stack to a sane minimum removes the overflow; nothing else is
 * changed. See docs/decisions.md.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

#define ARCHIVE_MIN_THREAD_STACK ((size_t) 4 * 1024 * 1024)

typedef int (*setstacksize_fn)(pthread_attr_t *, size_t);

int pthread_attr_setstacksize(pthread_attr_t *attr, size_t size)
{
    static setstacksize_fn real = NULL;
    if (real == NULL) {
        real = (setstacksize_fn) dlsym(RTLD_NEXT, "pthread_attr_setstacksize");
    }
    if (size < ARCHIVE_MIN_THREAD_STACK) {
        size = ARCHIVE_MIN_THREAD_STACK;
    }
    return real(attr, size);
}

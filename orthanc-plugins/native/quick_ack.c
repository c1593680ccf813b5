/*
 * Preloaded into Orthanc (LD_PRELOAD) by the launcher and the tests, next to thread_stack.c.
 *
 * Many DICOM senders leave Nagle's algorithm on (Debian's storescu without TCP_NODELAY=1,
 * pynetdicom, gateways). Nagle holds back a small segment (the tail of a P-DATA PDU, the next
 * PDU's header) while earlier data is unacknowledged, and the receiving Linux kernel, once it
 * sees a request/response pattern, delays its ACK by 40 ms or more ("pingpong" mode). Each image
 * then waits on a delayed ACK. TCP_QUICKACK (tcp(7)) makes the kernel acknowledge at once, but
 * it is not permanent: the kernel goes back to delayed ACKs by itself. So after every successful
 * read from a TCP socket, this library sets TCP_QUICKACK again.
 *
 * Interposed: read, recv, recvfrom, recvmsg (DCMTK's dcmnet and OpenSSL's socket BIO read with
 * read(), civetweb with recv() and read()); accept, accept4 and close keep a per-descriptor
 * cache honest. Only TCP sockets are touched: a descriptor is probed once with
 * getsockopt(SOL_SOCKET, SO_PROTOCOL) == IPPROTO_TCP (files and pipes answer ENOTSOCK, UNIX
 * sockets protocol 0) and the answer is cached until the descriptor is closed or reused by
 * accept. A stale cache entry is harmless: setsockopt on anything but TCP fails (and the entry is
 * corrected), and a missed TCP socket only keeps the kernel's default.
 *
 * Cost: one setsockopt(2) per successful read of a TCP socket, plus one getsockopt(2) the first
 * time a descriptor is read. ARCHIVE_QUICKACK=0 (or false/off/no) in the environment makes every
 * interposed call a plain pass-through. See docs/decisions.md.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

/* What is known about a descriptor: nothing yet, a TCP socket, or anything else. */
enum { FD_UNKNOWN = 0, FD_TCP = 1, FD_OTHER = 2 };
#define FD_CACHE_SIZE 65536

static unsigned char fd_kind[FD_CACHE_SIZE];
static int enabled = -1; /* -1: environment not read yet */
static unsigned long quick_acks; /* successful TCP_QUICKACK calls, for tests */

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*recvfrom_fn)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*close_fn)(int);

static read_fn real_read;
static recv_fn real_recv;
static recvfrom_fn real_recvfrom;
static recvmsg_fn real_recvmsg;
static accept_fn real_accept;
static accept4_fn real_accept4;
static close_fn real_close;

static void *next(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static int is_enabled(void)
{
    int value = __atomic_load_n(&enabled, __ATOMIC_RELAXED);
    if (value < 0) {
        const char *setting = getenv("ARCHIVE_QUICKACK");
        value = !(setting != NULL && (strcmp(setting, "0") == 0 || strcasecmp(setting, "false") == 0
                                      || strcasecmp(setting, "off") == 0
                                      || strcasecmp(setting, "no") == 0));
        __atomic_store_n(&enabled, value, __ATOMIC_RELAXED);
    }
    return value;
}

__attribute__((constructor)) static void quick_ack_init(void)
{
    real_read = (read_fn) next("read");
    real_recv = (recv_fn) next("recv");
    real_recvfrom = (recvfrom_fn) next("recvfrom");
    real_recvmsg = (recvmsg_fn) next("recvmsg");
    real_accept = (accept_fn) next("accept");
    real_accept4 = (accept4_fn) next("accept4");
    real_close = (close_fn) next("close");
    is_enabled();
}

static void forget(int fd)
{
    if (fd >= 0 && fd < FD_CACHE_SIZE) {
        __atomic_store_n(&fd_kind[fd], FD_UNKNOWN, __ATOMIC_RELAXED);
    }
}

static int probe(int fd)
{
    int protocol = 0;
    socklen_t length = sizeof protocol;
    if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &length) == 0 && protocol == IPPROTO_TCP) {
        return FD_TCP;
    }
    return FD_OTHER;
}

/* After a successful read of fd: acknowledge now if fd is a TCP socket. errno is kept. */
static void after_read(int fd, ssize_t got)
{
    if (got <= 0 || fd < 0 || !is_enabled()) {
        return;
    }
    int kind = fd < FD_CACHE_SIZE ? __atomic_load_n(&fd_kind[fd], __ATOMIC_RELAXED) : FD_UNKNOWN;
    if (kind == FD_OTHER) {
        return;
    }
    int saved = errno;
    if (kind == FD_UNKNOWN) {
        kind = probe(fd);
        if (fd < FD_CACHE_SIZE) {
            __atomic_store_n(&fd_kind[fd], (unsigned char) kind, __ATOMIC_RELAXED);
        }
    }
    if (kind == FD_TCP) {
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one) == 0) {
            __atomic_fetch_add(&quick_acks, 1, __ATOMIC_RELAXED);
        } else if (errno == ENOTSOCK || errno == ENOPROTOOPT || errno == EOPNOTSUPP || errno == EBADF) {
            forget(fd); /* the descriptor was reused behind our back: probe it again next time */
        }
    }
    errno = saved;
}

/* For tests: how many times TCP_QUICKACK was set (dlsym(RTLD_DEFAULT, ...) in a harness). */
unsigned long archive_quick_ack_count(void)
{
    return __atomic_load_n(&quick_acks, __ATOMIC_RELAXED);
}

int archive_quick_ack_enabled(void)
{
    return is_enabled();
}

ssize_t read(int fd, void *buffer, size_t count)
{
    if (real_read == NULL) {
        real_read = (read_fn) next("read");
    }
    ssize_t got = real_read(fd, buffer, count);
    after_read(fd, got);
    return got;
}

ssize_t recv(int fd, void *buffer, size_t count, int flags)
{
    if (real_recv == NULL) {
        real_recv = (recv_fn) next("recv");
    }
    ssize_t got = real_recv(fd, buffer, count, flags);
    after_read(fd, got);
    return got;
}

ssize_t recvfrom(int fd, void *buffer, size_t count, int flags, struct sockaddr *from,
                 socklen_t *from_length)
{
    if (real_recvfrom == NULL) {
        real_recvfrom = (recvfrom_fn) next("recvfrom");
    }
    ssize_t got = real_recvfrom(fd, buffer, count, flags, from, from_length);
    after_read(fd, got);
    return got;
}

ssize_t recvmsg(int fd, struct msghdr *message, int flags)
{
    if (real_recvmsg == NULL) {
        real_recvmsg = (recvmsg_fn) next("recvmsg");
    }
    ssize_t got = real_recvmsg(fd, message, flags);
    after_read(fd, got);
    return got;
}

int accept(int fd, struct sockaddr *address, socklen_t *length)
{
    if (real_accept == NULL) {
        real_accept = (accept_fn) next("accept");
    }
    int accepted = real_accept(fd, address, length);
    forget(accepted);
    return accepted;
}

int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags)
{
    if (real_accept4 == NULL) {
        real_accept4 = (accept4_fn) next("accept4");
    }
    int accepted = real_accept4(fd, address, length, flags);
    forget(accepted);
    return accepted;
}

int close(int fd)
{
    if (real_close == NULL) {
        real_close = (close_fn) next("close");
    }
    forget(fd);
    return real_close(fd);
}

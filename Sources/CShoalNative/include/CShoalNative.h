// The one C target of Shoal: OpenSSL 3, zstd and liburing, plus shims for what the
// Swift importer cannot see (function-like macros, ioctl request numbers).
#ifndef CSHOAL_NATIVE_H
#define CSHOAL_NATIVE_H

// Order matters: liburing.h defines _XOPEN_SOURCE, which hides fd_set & co. from any
// later glibc header. Including the glibc headers first keeps one consistent definition
// for every Swift module that sees both OpenSSL and liburing.
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <signal.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bn.h>

#include <zstd.h>

#if __has_include(<liburing.h>)
#include <liburing.h>
#else
#error "liburing.h not found: install Debian's liburing-dev (apt-get install liburing-dev)"
#endif

// --- OpenSSL macros ---------------------------------------------------------------
int CShoalNative_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
/// SSL_OP_NO_TICKET is built with a function-like macro (SSL_OP_BIT).
uint64_t CShoalNative_SSL_CTX_set_options_no_ticket(SSL_CTX *ctx);

// --- liburing flags that are macros ---------------------------------------------
extern const unsigned int CShoalNative_IOSQE_IO_LINK;

// --- fcntl/fallocate flags -------------------------------------------------------
extern const int CShoalNative_O_DIRECT;
extern const int CShoalNative_FALLOC_FL_PUNCH_HOLE;
extern const int CShoalNative_FALLOC_FL_KEEP_SIZE;
extern const int CShoalNative_FALLOC_FL_ZERO_RANGE;

// --- block device ioctls (request numbers are function-like macros) ---------------
/// Size in bytes of a block device (BLKGETSIZE64). Returns 0 on success, -errno on failure.
int CShoalNative_blockDeviceSize(int fd, uint64_t *size);
/// Logical sector size of a block device (BLKSSZGET). Returns 0 or -errno.
int CShoalNative_blockDeviceLogicalSectorSize(int fd, int *size);
/// Zero a byte range of a block device (BLKZEROOUT). Returns 0 or -errno.
int CShoalNative_blockDeviceZeroOut(int fd, uint64_t offset, uint64_t length);

/// fallocate(2); glibc declares it only under _GNU_SOURCE, which Swift's Glibc module lacks.
int CShoalNative_fallocate(int fd, int mode, off_t offset, off_t length);

/// major()/minor() are macros in glibc.
unsigned int CShoalNative_major(dev_t dev);
unsigned int CShoalNative_minor(dev_t dev);

#endif

#include "CShoalNative.h"
#include <errno.h>
#include <linux/fs.h>
#include <linux/falloc.h>
#include <sys/sysmacros.h>

int CShoalNative_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

uint64_t CShoalNative_SSL_CTX_set_options_no_ticket(SSL_CTX *ctx) {
    return (uint64_t)SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
}

const unsigned int CShoalNative_IOSQE_IO_LINK = IOSQE_IO_LINK;
const int CShoalNative_O_DIRECT = O_DIRECT;
const int CShoalNative_FALLOC_FL_PUNCH_HOLE = FALLOC_FL_PUNCH_HOLE;
const int CShoalNative_FALLOC_FL_KEEP_SIZE = FALLOC_FL_KEEP_SIZE;
const int CShoalNative_FALLOC_FL_ZERO_RANGE = FALLOC_FL_ZERO_RANGE;

int CShoalNative_blockDeviceSize(int fd, uint64_t *size) {
    return ioctl(fd, BLKGETSIZE64, size) == 0 ? 0 : -errno;
}

int CShoalNative_blockDeviceLogicalSectorSize(int fd, int *size) {
    return ioctl(fd, BLKSSZGET, size) == 0 ? 0 : -errno;
}

int CShoalNative_blockDeviceZeroOut(int fd, uint64_t offset, uint64_t length) {
    uint64_t range[2] = { offset, length };
    return ioctl(fd, BLKZEROOUT, range) == 0 ? 0 : -errno;
}

unsigned int CShoalNative_major(dev_t dev) { return major(dev); }
unsigned int CShoalNative_minor(dev_t dev) { return minor(dev); }

int CShoalNative_fallocate(int fd, int mode, off_t offset, off_t length) {
    return fallocate(fd, mode, offset, length);
}

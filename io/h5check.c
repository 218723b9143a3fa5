/* Integrity checks made before HDF5 decodes a file (see h5check.h). */
#include "io/h5check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* little-endian n-byte unsigned at p */
static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int ssl_h5_superblock_ok(const char *path, char *why, size_t whylen)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char head[48];
    FILE *fp = fopen(path, "rb");
    if (!fp) return snprintf(why, whylen, "%s", strerror(errno)), -1;
    size_t got = fread(head, 1, sizeof head, fp);
    long size = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
    fclose(fp);
    if (got < 9 || memcmp(head, sig, sizeof sig))
        return snprintf(why, whylen, "not an HDF5 file (no signature at offset 0; truncated or overwritten?)"), -1;
    if (head[8] < 2)
        return snprintf(why, whylen, "HDF5 superblock version %d has no checksums (an old sslrun, or HDF5's "
                                     "default format: write it with libver >= 1.10)", head[8]), -1;
    /* superblock v2/v3: offset size at 9, then base, extension and end-of-file addresses: a file
     * shorter than its end-of-file address lost its tail (HDF5 itself says only that it cannot open) */
    const int o = got >= 12 ? head[9] : 0;
    if (o == 8 && got >= 12 + 3 * 8 && size >= 0) {
        const uint64_t base = le(head + 12, 8), eof = le(head + 28, 8);
        if (eof > (uint64_t)size || base > (uint64_t)size - eof) /* no wrap of base + eof */
            return snprintf(why, whylen, "truncated: %ld of %llu bytes (or a damaged superblock)", size,
                            (unsigned long long)base + eof), -1;
    }
    return 0;
}

int ssl_h5_chunk_index_ok(hid_t ds, char *why, size_t whylen)
{
    hid_t dcpl = H5Dget_create_plist(ds);
    H5D_layout_t lay = dcpl < 0 ? H5D_LAYOUT_ERROR : H5Pget_layout(dcpl);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lay < 0) return snprintf(why, whylen, "cannot read its layout"), -1;
    if (lay != H5D_CHUNKED) return 0;
    H5D_chunk_index_t idx = H5D_CHUNK_IDX_BTREE;
    if (H5Dget_chunk_index_type(ds, &idx) < 0) return snprintf(why, whylen, "cannot read its chunk index"), -1;
    if (idx == H5D_CHUNK_IDX_BTREE)
        return snprintf(why, whylen, "its chunk index is a v1 B-tree, which has no checksums (written in a "
                                     "format before HDF5 1.10)"), -1;
    return 0;
}

typedef struct {
    char *buf;
    size_t len;
} reason_buf;

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data)
{
    reason_buf *r = data;
    if (n == 0 && e->desc) snprintf(r->buf, r->len, "%s", e->desc);
    return 0;
}

const char *ssl_h5_reason(char *buf, size_t len)
{
    reason_buf r = {buf, len};
    buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &r);
    return buf[0] ? buf : "no detail from HDF5";
}

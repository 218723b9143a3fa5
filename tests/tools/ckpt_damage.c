/* ckpt_damage FILE truncate | flip DATASET | unlink DATASET: damages a checkpoint the ways storage
 * does, for the resume tests.
 *   truncate        cut the file to half its size (a write that never finished reaching the disk)
 *   flip DATASET    invert one byte in the middle of DATASET's first stored chunk (bit rot in data:
 *                   the file still opens and every structure is intact)
 *   unlink DATASET  remove DATASET from the file (a file from a writer that skipped an array) */
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int flip(const char *path, const char *name)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = f < 0 ? -1 : H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return fprintf(stderr, "ckpt_damage: %s: no dataset '%s'\n", path, name), 1;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    hid_t dcpl = H5Dget_create_plist(ds);
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hid_t sp = H5Dget_space(ds);
        hsize_t nchunks = 0, off[1];
        unsigned mask;
        H5Dget_num_chunks(ds, sp, &nchunks);
        if (nchunks) H5Dget_chunk_info(ds, sp, 0, off, &mask, &addr, &size);
        H5Sclose(sp);
    } else {
        addr = H5Dget_offset(ds);
        size = H5Dget_storage_size(ds);
    }
    H5Pclose(dcpl);
    H5Dclose(ds);
    H5Fclose(f);
    if (addr == HADDR_UNDEF || size == 0) return fprintf(stderr, "ckpt_damage: '%s' has no stored data\n", name), 1;
    int fd = open(path, O_RDWR);
    unsigned char b;
    off_t at = (off_t)(addr + size / 2);
    if (fd < 0 || pread(fd, &b, 1, at) != 1) return perror(path), 1;
    b ^= 0xff;
    if (pwrite(fd, &b, 1, at) != 1) return perror(path), 1;
    close(fd);
    printf("flipped byte %lld of %s ('%s' chunk at %llu, %llu bytes)\n", (long long)at, path, name,
           (unsigned long long)addr, (unsigned long long)size);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ckpt_damage FILE truncate | flip DATASET | unlink DATASET\n");
        return 2;
    }
    const char *path = argv[1], *how = argv[2];
    if (!strcmp(how, "truncate")) {
        struct stat st;
        if (stat(path, &st) || truncate(path, st.st_size / 2)) return perror(path), 1;
        return 0;
    }
    if (argc < 4) return fprintf(stderr, "ckpt_damage: %s needs a dataset name\n", how), 2;
    if (!strcmp(how, "flip")) return flip(path, argv[3]);
    if (!strcmp(how, "unlink")) {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        int bad = f < 0 || H5Ldelete(f, argv[3], H5P_DEFAULT) < 0;
        if (f >= 0) H5Fclose(f);
        if (bad) fprintf(stderr, "ckpt_damage: cannot remove '%s' from %s\n", argv[3], path);
        return bad;
    }
    fprintf(stderr, "ckpt_damage: unknown damage '%s'\n", how);
    return 2;
}

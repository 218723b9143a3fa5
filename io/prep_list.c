/* Listing of `prep images` sources (see prep_internal.h): everything is listed and every file's first
 * bytes checked before anything is written, so a wrong layout fails in seconds, not after hours of
 * decoding. Also classes.txt and the list's hash (the resume manifest). */
#include "framework/core/check.h"
#include "io/prep_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int join(char *out, size_t len, const char *dir, const char *name)
{
    return snprintf(out, len, "%s/%s", dir, name) < (int)len ? 0 : -1;
}

typedef struct {
    char **v;
    size_t n, cap;
} strlist;

static void strlist_push(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        SSL_ASSERTF(v != NULL, "out of memory listing %zu names", cap);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strdup(s);
    SSL_ASSERTF(l->v[l->n] != NULL, "out of memory listing %s", s);
    l->n++;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Byte order of UTF-8 is code-point order, which is what Python's sorted() gives ImageFolder. */
static void strlist_sort(strlist *l)
{
    if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, cmp_name);
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void ssl_prep_list_push(ssl_prep_list *l, const char *rel, int32_t label)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        char **r = realloc(l->rel, cap * sizeof *r);
        int32_t *lab = realloc(l->label, cap * sizeof *lab);
        SSL_ASSERTF(r && lab, "out of memory listing %zu images", cap);
        l->rel = r;
        l->label = lab;
        l->cap = cap;
    }
    l->rel[l->n] = strdup(rel);
    SSL_ASSERTF(l->rel[l->n] != NULL, "out of memory listing %s", rel);
    l->label[l->n++] = label;
}

void ssl_prep_list_free(ssl_prep_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->rel[i]);
    for (size_t c = 0; c < l->nclasses; c++) free(l->classes[c]);
    free(l->rel);
    free(l->label);
    free(l->classes);
    memset(l, 0, sizeof *l);
}

/* The image files of one folder, sorted (names starting with '.' ignored: ., .., .DS_Store, editor
 * and sync droppings); other files are counted, folders counted as nested. */
static int list_images(const char *dir, ssl_prep_list *l, strlist *files, int64_t *nested, char *err,
                       size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        ssl_seterr(err, errlen, "%s: cannot open folder: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    char path[SSL_PREP_PATH_LEN];
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        struct stat st;
        if (join(path, sizeof path, dir, e->d_name) < 0) {
            ssl_seterr(err, errlen, "%s/%s: path too long", dir, e->d_name);
            rc = -1;
        } else if (stat(path, &st) != 0) {
            ssl_seterr(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            (*nested)++;
        } else {
            int kind = S_ISREG(st.st_mode) ? ssl_prep_image_kind(path, err, errlen) : SSL_PREP_KIND_OTHER;
            if (kind < 0) {
                rc = -1;
            } else if (kind == SSL_PREP_KIND_OTHER) {
                if (l->skipped++ == 0) snprintf(l->first_skipped, sizeof l->first_skipped, "%s", path);
            } else if (strpbrk(e->d_name, "\n\r\t")) {
                ssl_seterr(err, errlen, "%s: file name has a tab or line break (the manifest and labels "
                       "files are one name per line)", path);
                rc = -1;
            } else {
                strlist_push(files, e->d_name);
            }
        }
    }
    closedir(d);
    strlist_sort(files);
    return rc;
}

int ssl_prep_list_tree(const char *src, const char *out_dir, ssl_prep_list *l, char *err, size_t errlen)
{
    /* the output folder as a subfolder of src would be read as a class (on the second run at the
     * latest), so it is refused */
    struct stat out_st;
    const int out_exists = stat(out_dir, &out_st) == 0;
    DIR *d = opendir(src);
    if (!d) {
        ssl_seterr(err, errlen, "%s: cannot open the source folder: %s", src, strerror(errno));
        return -1;
    }
    strlist classes = {0};
    char path[SSL_PREP_PATH_LEN];
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        struct stat st;
        if (join(path, sizeof path, src, e->d_name) < 0) {
            ssl_seterr(err, errlen, "%s/%s: path too long", src, e->d_name);
            rc = -1;
        } else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            /* Files next to the class folders are ignored, as ImageFolder does. */
            if (out_exists && st.st_dev == out_st.st_dev && st.st_ino == out_st.st_ino) {
                ssl_seterr(err, errlen, "%s: the output folder is inside the source folder and would "
                       "be read as a class; choose another --out", path);
                rc = -1;
            } else if (strpbrk(e->d_name, "\n\r\t")) {
                ssl_seterr(err, errlen, "%s: class folder name has a tab or line break (classes.txt is "
                       "one name per line)", path);
                rc = -1;
            } else {
                strlist_push(&classes, e->d_name);
            }
        }
    }
    closedir(d);
    if (rc == 0 && classes.n == 0) {
        ssl_seterr(err, errlen, "%s: no class folders (expected one subfolder of images per class)", src);
        rc = -1;
    }
    if (rc == 0 && classes.n > INT32_MAX) {
        ssl_seterr(err, errlen, "%s: %zu class folders is too many", src, classes.n);
        rc = -1;
    }
    strlist_sort(&classes);
    for (size_t c = 0; rc == 0 && c < classes.n; c++) {
        strlist files = {0};
        int64_t skipped0 = l->skipped;
        if (join(path, sizeof path, src, classes.v[c]) < 0) {
            ssl_seterr(err, errlen, "%s/%s: path too long", src, classes.v[c]);
            rc = -1;
        } else if (list_images(path, l, &files, &l->nested, err, errlen) < 0) {
            rc = -1;
        } else if (files.n == 0) {
            ssl_seterr(err, errlen, "%s: class folder has no PNG or JPEG images (%lld other files)", path,
                   (long long)(l->skipped - skipped0));
            rc = -1;
        }
        char rel[SSL_PREP_PATH_LEN];
        for (size_t i = 0; rc == 0 && i < files.n; i++) {
            if (join(rel, sizeof rel, classes.v[c], files.v[i]) < 0) {
                ssl_seterr(err, errlen, "%s/%s: path too long", path, files.v[i]);
                rc = -1;
            } else {
                ssl_prep_list_push(l, rel, (int32_t)c);
            }
        }
        strlist_free(&files);
    }
    if (rc == 0) { /* the list takes the class names */
        l->classes = classes.v;
        l->nclasses = classes.n;
    } else {
        strlist_free(&classes);
    }
    return rc;
}

int ssl_prep_list_flat(const char *src, ssl_prep_list *l, char *err, size_t errlen)
{
    strlist files = {0};
    int64_t nested = 0;
    int rc = list_images(src, l, &files, &nested, err, errlen);
    if (rc == 0 && files.n == 0) {
        ssl_seterr(err, errlen, "%s: no PNG or JPEG images in the folder (%lld other files)", src,
               (long long)l->skipped);
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < files.n; i++) ssl_prep_list_push(l, files.v[i], -1);
    l->nested = nested;
    strlist_free(&files);
    return rc;
}

/* ---- classes.txt ---------------------------------------------------------------------------- */

char *ssl_prep_classes_text(const ssl_prep_list *l, size_t *len)
{
    size_t n = 0;
    for (size_t c = 0; c < l->nclasses; c++) n += strlen(l->classes[c]) + 1;
    char *s = ssl_malloc(n + 1), *p = s;
    for (size_t c = 0; c < l->nclasses; c++) p += sprintf(p, "%s\n", l->classes[c]);
    *len = n;
    return s;
}

int ssl_prep_check_classes_file(const char *path, const char *want, size_t len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f && errno == ENOENT) return 0;
    if (!f) {
        ssl_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *have = ssl_malloc(len + 2);
    size_t got = fread(have, 1, len + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = 0;
    if (bad) {
        ssl_seterr(err, errlen, "%s: read error", path);
        rc = -1;
    } else if (got != len || memcmp(have, want, len) != 0) {
        int line = 1;
        for (size_t i = 0; i < got && i < len && have[i] == want[i]; i++) line += have[i] == '\n';
        ssl_seterr(err, errlen, "%s lists other classes than the source folder (from line %d on); "
               "shards of another --prefix next to it would disagree on labels. Use another --out, "
               "or delete it if those shards are gone", path, line);
        rc = -1;
    }
    ssl_free(have);
    return rc;
}

int ssl_prep_write_text_file(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
    char tmp[SSL_PREP_PATH_LEN];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        ssl_seterr(err, errlen, "%s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        ssl_seterr(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = fwrite(text, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        ssl_seterr(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ---- hash ----------------------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

uint64_t ssl_prep_list_hash(const ssl_prep_list *l)
{
    uint64_t h = 0xcbf29ce484222325ull;
    char lab[16];
    for (size_t c = 0; c < l->nclasses; c++) h = fnv(h, l->classes[c], strlen(l->classes[c]) + 1);
    for (size_t i = 0; i < l->n; i++) {
        h = fnv(h, l->rel[i], strlen(l->rel[i]) + 1);
        h = fnv(h, lab, (size_t)snprintf(lab, sizeof lab, "%d", (int)l->label[i]) + 1);
    }
    return h;
}

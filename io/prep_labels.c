/* Labels of a flat folder of images (ImageNet's validation layout) from a labels file, as indexes
 * into a train prep's classes.txt, so that train and val agree (prep_internal.h). Two formats:
 * Kaggle's LOC_val_solution.csv (header "ImageId,PredictionString"; the first token of
 * PredictionString is the class) and "name class" lines (the name with or without extension). */
#include "framework/core/check.h"
#include "io/prep_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT_BYTES ((long)1 << 30)

static char *read_text(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ssl_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    char *s = NULL;
    if (n < 0 || n > MAX_TEXT_BYTES) {
        ssl_seterr(err, errlen, "%s: cannot read (size %ld)", path, n);
    } else {
        rewind(f);
        s = ssl_malloc((size_t)n + 1);
        if (fread(s, 1, (size_t)n, f) != (size_t)n) {
            ssl_seterr(err, errlen, "%s: read error", path);
            ssl_free(s);
            s = NULL;
        } else {
            s[n] = '\0';
            if (strlen(s) != (size_t)n) {
                ssl_seterr(err, errlen, "%s: has a NUL byte; expected text", path);
                ssl_free(s);
                s = NULL;
            }
        }
    }
    fclose(f);
    return s;
}

/* Next line of *p (NUL-terminated in place, "\r\n" too), or NULL at the end. */
static char *next_line(char **p)
{
    if (!**p) return NULL;
    char *line = *p, *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = line + strlen(line);
    }
    size_t len = strlen(line);
    if (len && line[len - 1] == '\r') line[len - 1] = '\0';
    return line;
}

typedef struct {
    const char *name;
    int32_t index;
} entry;

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

static const entry *find(const entry *v, size_t n, const char *name)
{
    entry key = {name, 0};
    return n ? bsearch(&key, v, n, sizeof *v, cmp_entry) : NULL;
}

static int read_classes(ssl_prep_list *l, const char *path, char *err, size_t errlen)
{
    char *text = read_text(path, err, errlen);
    if (!text) return -1;
    char *p = text, *line;
    int rc = 0, ln = 0;
    size_t cap = 0;
    while (rc == 0 && (line = next_line(&p))) {
        ln++;
        if (!line[0] || strpbrk(line, "\t")) {
            ssl_seterr(err, errlen, "%s line %d: %s; expected one class name per line", path, ln,
                   line[0] ? "a tab" : "an empty line");
            rc = -1;
        } else {
            if (l->nclasses == cap) {
                cap = cap ? 2 * cap : 1024;
                l->classes = realloc(l->classes, cap * sizeof *l->classes);
                SSL_ASSERTF(l->classes != NULL, "out of memory reading %s", path);
            }
            l->classes[l->nclasses] = strdup(line);
            SSL_ASSERTF(l->classes[l->nclasses] != NULL, "out of memory reading %s", path);
            l->nclasses++;
        }
    }
    ssl_free(text);
    if (rc == 0 && l->nclasses == 0) {
        ssl_seterr(err, errlen, "%s: no classes", path);
        rc = -1;
    }
    return rc;
}

int ssl_prep_apply_labels(ssl_prep_list *l, const char *labels_path, const char *classes_path, char *err,
                          size_t errlen)
{
    if (read_classes(l, classes_path, err, errlen) < 0) return -1;
    entry *cls = ssl_malloc(l->nclasses * sizeof *cls);
    for (size_t c = 0; c < l->nclasses; c++) cls[c] = (entry){l->classes[c], (int32_t)c};
    qsort(cls, l->nclasses, sizeof *cls, cmp_entry);
    int rc = 0;
    for (size_t c = 1; rc == 0 && c < l->nclasses; c++)
        if (!strcmp(cls[c].name, cls[c - 1].name)) {
            ssl_seterr(err, errlen, "%s: class '%s' is listed twice", classes_path, cls[c].name);
            rc = -1;
        }
    char *text = rc ? NULL : read_text(labels_path, err, errlen);
    entry *lab = NULL;
    size_t n = 0, cap = 0;
    if (!text) rc = -1;
    char *p = text, *line;
    int ln = 0;
    const char *bom = "\xef\xbb\xbf";
    if (p && !strncmp(p, bom, 3)) p += 3;
    const int csv = p && !strncmp(p, "ImageId,", 8);
    if (csv) (void)next_line(&p), ln++;
    while (rc == 0 && (line = next_line(&p))) {
        ln++;
        if (!line[strspn(line, " \t")]) continue; /* a blank line */
        char *name = line, *cname = NULL, *rest;
        if (csv) { /* ImageId,PredictionString: the first token is the class */
            char *comma = strchr(line, ',');
            if (comma) *comma = '\0', cname = strtok_r(comma + 1, " \t", &rest);
        } else {
            name = strtok_r(line, " \t", &rest);
            cname = strtok_r(NULL, " \t", &rest);
            if (cname && strtok_r(NULL, " \t", &rest)) cname = NULL;
        }
        if (!name[0] || !cname) {
            ssl_seterr(err, errlen, "%s line %d: expected %s", labels_path, ln,
                   csv ? "ImageId,CLASS ... (LOC_val_solution.csv)" : "two fields: NAME CLASS");
            rc = -1;
            break;
        }
        const entry *c = find(cls, l->nclasses, cname);
        if (!c) {
            ssl_seterr(err, errlen, "%s line %d: class '%s' of %s is not in %s", labels_path, ln, cname,
                   name, classes_path);
            rc = -1;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            entry *v = realloc(lab, cap * sizeof *lab);
            SSL_ASSERTF(v != NULL, "out of memory reading %s", labels_path);
            lab = v;
        }
        lab[n++] = (entry){name, c->index};
    }
    if (rc == 0 && n > 1) {
        qsort(lab, n, sizeof *lab, cmp_entry);
        for (size_t i = 1; rc == 0 && i < n; i++)
            if (!strcmp(lab[i].name, lab[i - 1].name)) {
                ssl_seterr(err, errlen, "%s: '%s' is labelled twice", labels_path, lab[i].name);
                rc = -1;
            }
    }
    /* each image by its name, else by its name without the extension (ImageId has none) */
    char base[SSL_PREP_PATH_LEN];
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        const entry *e = find(lab, n, l->rel[i]);
        if (!e) {
            snprintf(base, sizeof base, "%s", l->rel[i]);
            char *dot = strrchr(base, '.');
            if (dot && dot != base) *dot = '\0', e = find(lab, n, base);
        }
        if (!e) {
            ssl_seterr(err, errlen, "image %s has no label in %s", l->rel[i], labels_path);
            rc = -1;
        } else {
            l->label[i] = e->index;
        }
    }
    free(lab);
    ssl_free(text);
    ssl_free(cls);
    return rc;
}

/* ckpt_compare A.h5 B.h5 [--rtol R] [--dataset NAME]... [--l2] [-v]: compares two sslrun checkpoints tensor by
 * tensor, the way the end-to-end tests judge "the same training" across rank counts and resumes.
 *
 * For every compared flat dataset (default: params, buffers) it walks the file's segment table
 * (`segments` for params and a teacher's prefix of them, `buffer_segments` for buffers; a dataset without a
 * table is one tensor)
 * and prints, per tensor, the relative L2 difference |a-b| / max(|b|, rms(B) sqrt(n)): relative to
 * the tensor, or, for a tensor far smaller than the model's typical value (a BN bias that has moved
 * 1e-6 from its zero init), to a tensor of that typical size, so fp32 noise on near-zero values is
 * not read as a 1e-3 relative error. It exits 1 when any tensor exceeds --rtol (default 0: bitwise
 * equal), 2 on usage or read errors. -v prints every tensor (n, rel_l2, max_abs, and l2: |a-b| itself). --l2 also prints "l2_diff NAME X", the absolute L2 norm of
 * A - B over each whole dataset (a step's update, when A and B are one step apart). Reads with
 * HDF5 alone, as any user of the files would. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *read_floats(hid_t f, const char *name, size_t *n)
{
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) return NULL;
    hid_t sp = H5Dget_space(ds);
    *n = (size_t)H5Sget_simple_extent_npoints(sp);
    float *v = malloc((*n ? *n : 1) * sizeof *v);
    herr_t st = H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Sclose(sp);
    H5Dclose(ds);
    if (st < 0) {
        free(v);
        return NULL;
    }
    return v;
}

static char *read_text(hid_t f, const char *name)
{
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return NULL;
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT), t = H5Dget_type(ds);
    size_t n = H5Tget_size(t);
    char *s = calloc(n + 1, 1);
    if (H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) < 0) s[0] = 0;
    H5Tclose(t);
    H5Dclose(ds);
    return s;
}

/* Compare [off, off+n) of a and b; returns the relative L2 difference and prints one line. */
static double compare(const char *what, const float *a, const float *b, size_t n, double rms, int verbose)
{
    double d2 = 0, b2 = 0, dmax = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        d2 += d * d;
        b2 += (double)b[i] * b[i];
        if (fabs(d) > dmax || d != d) dmax = d != d ? INFINITY : fabs(d);
    }
    double rel = sqrt(d2) / fmax(fmax(sqrt(b2), rms * sqrt((double)n)), 1e-30);
    if (d2 == 0) rel = 0;
    if (!(rel == rel)) rel = INFINITY;
    if (verbose) printf("%-48s n=%-8zu rel_l2=%.3e max_abs=%.3e l2=%.9e\n", what, n, rel, dmax, sqrt(d2));
    return rel;
}

int main(int argc, char **argv)
{
    const char *pa = NULL, *pb = NULL, *names[16];
    int nnames = 0, verbose = 0, l2 = 0;
    double rtol = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rtol") && i + 1 < argc) rtol = atof(argv[++i]);
        else if (!strcmp(argv[i], "--dataset") && i + 1 < argc && nnames < 16) names[nnames++] = argv[++i];
        else if (!strcmp(argv[i], "-v")) verbose = 1;
        else if (!strcmp(argv[i], "--l2")) l2 = 1;
        else if (!pa) pa = argv[i];
        else if (!pb) pb = argv[i];
        else pa = NULL, i = argc;
    }
    if (!pa || !pb) {
        fprintf(stderr, "usage: ckpt_compare A.h5 B.h5 [--rtol R] [--dataset NAME]... [-v]\n");
        return 2;
    }
    if (!nnames) {
        names[nnames++] = "params";
        names[nnames++] = "buffers";
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fa = H5Fopen(pa, H5F_ACC_RDONLY, H5P_DEFAULT), fb = H5Fopen(pb, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (fa < 0 || fb < 0) {
        fprintf(stderr, "ckpt_compare: cannot open %s\n", fa < 0 ? pa : pb);
        return 2;
    }
    double worst = 0;
    char worst_name[200] = "";
    int rc = 0;
    for (int k = 0; k < nnames && !rc; k++) {
        size_t na = 0, nb = 0;
        float *a = read_floats(fa, names[k], &na), *b = read_floats(fb, names[k], &nb);
        if (!a || !b || na != nb) {
            fprintf(stderr, "ckpt_compare: dataset '%s' unreadable or of different sizes (%zu vs %zu)\n", names[k],
                    na, nb);
            rc = 2;
        } else {
            /* a teacher ("teacher/params") is a prefix of the student's layout: the same table. Optimizer
             * moments are compared whole: a sum of gradients, per tensor they carry more relative noise
             * than the weights (a 4-value BN weight's LARS momentum: 3.6e-3 in the accumulation case) */
            const char *base = strrchr(names[k], '/') ? strrchr(names[k], '/') + 1 : names[k];
            const char *table = !strcmp(base, "params") ? "segments" : !strcmp(base, "buffers") ? "buffer_segments" : NULL;
            char *segs = table ? read_text(fa, table) : NULL;
            if (l2) {
                double d2 = 0;
                for (size_t i = 0; i < nb; i++) d2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
                printf("l2_diff %s %.9e\n", names[k], sqrt(d2));
            }
            double s2 = 0;
            for (size_t i = 0; i < nb; i++) s2 += (double)b[i] * b[i];
            double rms = nb ? sqrt(s2 / (double)nb) : 0;
            int nseg = 0;
            for (char *line = segs ? strtok(segs, "\n") : NULL; line; line = strtok(NULL, "\n")) {
                char nm[128];
                size_t off, n;
                if (sscanf(line, "%127s %zu %zu", nm, &off, &n) != 3 || off + n > na) continue;
                char what[200];
                snprintf(what, sizeof what, "%s:%s", names[k], nm);
                double r = compare(what, a + off, b + off, n, rms, verbose);
                nseg++;
                if (r > worst || (r != r)) worst = r, snprintf(worst_name, sizeof worst_name, "%s", what);
            }
            if (!nseg) {
                double r = compare(names[k], a, b, na, 0, verbose);
                if (r > worst) worst = r, snprintf(worst_name, sizeof worst_name, "%s", names[k]);
            }
            free(segs);
        }
        free(a);
        free(b);
    }
    H5Fclose(fa);
    H5Fclose(fb);
    if (rc) return rc;
    printf("worst tensor: %s rel_l2=%.3e (rtol %.3e)\n", worst_name[0] ? worst_name : "-", worst, rtol);
    return worst <= rtol ? 0 : 1;
}

/* `prep images` over P ranks (prep.h): rank 0 lists the source once (opening every file's header is
 * not cheap over a million files) and broadcasts the list; shard k goes to rank k % P, so the
 * output does not depend on P. The ranks meet after every round of P shards: one allgather of
 * counters tells everyone whether any rank failed (the lowest failing rank's message becomes
 * everyone's), so no rank is left in a collective while another gave up, and gives rank 0 the
 * exact progress at round boundaries. */
#include "framework/comm/comm.h"
#include "framework/core/check.h"
#include "io/prep_internal.h"
#include "io/shard_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SHARD_SIZE 10000
#define MAX_OUT_SIZE 8192
#define MAX_SHARDS 100000
#define MSG_LEN 2048
#define PROGRESS_S 2.0

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 0 when no rank failed; else every rank gets the message of the lowest failing rank, -1. */
static int agree(ssl_comm *c, int failed, char *err, size_t errlen)
{
    int64_t first = failed ? c->rank : c->world;
    ssl_allreduce(c, &first, 1, SSL_I64, SSL_MIN);
    if (first == c->world) return 0;
    char msg[MSG_LEN] = "";
    if (c->rank == first) snprintf(msg, sizeof msg, "%s", err ? err : "");
    ssl_broadcast(c, msg, sizeof msg, SSL_U8, (int)first);
    msg[sizeof msg - 1] = '\0';
    ssl_seterr(err, errlen, "%s", msg);
    return -1;
}

typedef struct {
    const char *src, *out, *prefix;
    const ssl_prep_images_opts *o;
    int size, shard_size, quality, jpeg;
    char what[SSL_PREP_PATH_LEN];      /* out/prefix, in messages */
    char manifest[SSL_PREP_PATH_LEN];
    char classes_path[SSL_PREP_PATH_LEN];
    char first[SSL_PREP_PATH_LEN];     /* raw, size 0: the image that fixes the size */
    ssl_prep_list l;
    int64_t nshards;
    int height, width, resume, wrote_manifest;
} plan;

/* Rank 0: list, label, check classes.txt and the manifest; nothing is written before this passes
 * except the output folder and the manifest. */
static int make_plan(plan *p, char *err, size_t errlen)
{
    const ssl_prep_images_opts *o = p->o;
    if (o->labels) {
        if (ssl_prep_list_flat(p->src, &p->l, err, errlen) < 0) return -1;
        const char *classes = o->classes ? o->classes : p->classes_path;
        if (ssl_prep_apply_labels(&p->l, o->labels, classes, err, errlen) < 0) return -1;
    } else if (ssl_prep_list_tree(p->src, p->out, &p->l, err, errlen) < 0) {
        return -1;
    }
    p->nshards = ((int64_t)p->l.n + p->shard_size - 1) / p->shard_size;
    if (p->nshards > MAX_SHARDS) {
        ssl_seterr(err, errlen, "%s: %zu images make more than %d shards; raise --shard-size", p->src, p->l.n,
               MAX_SHARDS);
        return -1;
    }
    size_t clen;
    char *ctext = ssl_prep_classes_text(&p->l, &clen);
    int rc = ssl_prep_check_classes_file(p->classes_path, ctext, clen, err, errlen);
    ssl_free(ctext);
    if (rc < 0 || ssl_make_dirs(p->out, err, errlen) < 0) return -1;
    p->height = p->width = p->size;
    if (!p->jpeg && p->size == 0) { /* the first image fixes the sample size */
        snprintf(p->first, sizeof p->first, "%s/%s", p->src, p->l.rel[0]);
        if (ssl_prep_probe_size(p->first, &p->height, &p->width, err, errlen) < 0) return -1;
    }
    ssl_prep_manifest m = {.size = p->size, .quality = p->jpeg ? p->quality : 0,
                           .shard_size = p->shard_size, .files = (int64_t)p->l.n,
                           .shards = p->nshards, .hash = ssl_prep_list_hash(&p->l)};
    snprintf(m.format, sizeof m.format, "%s", p->jpeg ? "jpeg" : "raw");
    if (ssl_prep_manifest_begin(p->manifest, &m, o->force, &p->resume, err, errlen) < 0) return -1;
    p->wrote_manifest = !p->resume;
    return 0;
}

/* The list from rank 0 to the others: class names, image paths (NUL-terminated), labels. */
static void share_list(ssl_comm *c, ssl_prep_list *l)
{
    int64_t h[3] = {(int64_t)l->n, (int64_t)l->nclasses, 0};
    if (c->rank == 0) {
        for (size_t i = 0; i < l->nclasses; i++) h[2] += (int64_t)strlen(l->classes[i]) + 1;
        for (size_t i = 0; i < l->n; i++) h[2] += (int64_t)strlen(l->rel[i]) + 1;
    }
    ssl_broadcast(c, h, 3, SSL_I64, 0);
    const size_t names = (size_t)h[2], n = (size_t)h[0], nc = (size_t)h[1];
    char *blob = ssl_malloc(names + n * sizeof(int32_t) + 1);
    if (c->rank == 0) {
        char *q = blob;
        for (size_t i = 0; i < nc; i++) q += strlen(strcpy(q, l->classes[i])) + 1;
        for (size_t i = 0; i < n; i++) q += strlen(strcpy(q, l->rel[i])) + 1;
        memcpy(q, l->label, n * sizeof(int32_t));
    }
    ssl_broadcast(c, blob, names + n * sizeof(int32_t), SSL_U8, 0);
    if (c->rank != 0) {
        const char *q = blob;
        l->classes = ssl_malloc((nc ? nc : 1) * sizeof *l->classes);
        for (size_t i = 0; i < nc; i++, q += strlen(q) + 1) l->classes[i] = strdup(q);
        l->nclasses = nc;
        for (size_t i = 0; i < n; i++, q += strlen(q) + 1) ssl_prep_list_push(l, q, 0);
        memcpy(l->label, q, n * sizeof(int32_t));
    }
    ssl_free(blob);
}

/* out/prefix-NNNNN.h5 (make_plan checked that the name fits) */
static void shard_path(char *out, size_t len, const plan *p, int64_t k)
{
    if (snprintf(out, len, "%s-%05d.h5", p->what, (int)k) >= (int)len) out[0] = '\0';
}

/* images in shard k (the last may be short) */
static int64_t shard_rows(const plan *p, int64_t k)
{
    const int64_t begin = k * p->shard_size, n = (int64_t)p->l.n;
    return begin + p->shard_size < n ? p->shard_size : n - begin;
}

/* ---- progress (rank 0) ---------------------------------------------------------------------- */

typedef struct {
    int on, tty, printed;
    double t0, last;
    const char *what;
    int64_t total, kept;  /* images; kept: in shards kept from an earlier run */
    int64_t base;         /* images written by all ranks up to the last round */
    int64_t own;          /* by rank 0 in this round */
    int ranks;            /* ranks writing in this round: rank 0's count x ranks estimates theirs */
    double every;         /* seconds between lines */
} progress;

static void progress_print(progress *g, double now)
{
    int64_t done = g->base + g->own * g->ranks;
    if (done > g->total - g->kept) done = g->total - g->kept;
    const double rate = now > g->t0 ? (double)done / (now - g->t0) : 0;
    const double eta = rate > 0 ? (double)(g->total - g->kept - done) / rate : 0;
    char kept[64] = "";
    if (g->kept) snprintf(kept, sizeof kept, " (%lld kept)", (long long)g->kept);
    fprintf(stderr, "%sprep: %s: %lld/%lld images%s, %.1f images/s, ETA %.0f s%s", g->tty ? "\r" : "",
            g->what, (long long)(done + g->kept), (long long)g->total, kept, rate, eta, g->tty ? "\033[K" : "\n");
    fflush(stderr);
    g->printed = 1;
    g->last = now;
}

static void progress_tick(void *ctx)
{
    progress *g = ctx;
    g->own++;
    const double now = seconds();
    if (g->on && now - g->last >= g->every) progress_print(g, now);
}

/* ---- the rounds ----------------------------------------------------------------------------- */

enum { ST_FAILED, ST_IMAGES, ST_SHARDS, ST_KEPT_SHARDS, ST_KEPT_IMAGES, ST_VERBATIM, ST_ENCODED, ST_BYTES, ST_N };

static int write_rounds(ssl_comm *c, plan *p, progress *g, int64_t *sum, char *err, size_t errlen)
{
    ssl_prep_job_spec js = {.src_dir = p->src, .out_dir = p->out, .prefix = p->prefix,
                            .format = p->jpeg ? SSL_PREP_JPEG : SSL_PREP_RAW, .size = p->size,
                            .quality = p->quality, .shard_size = p->shard_size,
                            .num_classes = (int)p->l.nclasses, .height = p->height, .width = p->width,
                            .first = p->first};
    ssl_prep_job *job = ssl_prep_job_open(&js, err, errlen);
    int64_t mine[ST_N] = {0};
    int64_t *all = ssl_malloc((size_t)c->world * ST_N * sizeof *all);
    mine[ST_FAILED] = job == NULL;
    char path[SSL_PREP_PATH_LEN];
    /* the shards an earlier run completed, each checked by the rank that owns it and made known to all
     * before any is written, so rank 0's progress line counts them from its first line and estimates
     * the other ranks' work from those that really write in a round */
    int64_t *keep = ssl_calloc((size_t)p->nshards + 1, sizeof *keep);
    for (int64_t k = c->rank; p->resume && k < p->nshards; k += c->world) {
        shard_path(path, sizeof path, p, k);
        keep[k] = ssl_prep_shard_usable(path, p->jpeg, (int)p->l.nclasses, shard_rows(p, k));
    }
    ssl_allreduce(c, keep, (size_t)p->nshards, SSL_I64, SSL_SUM);
    g->kept = 0;
    for (int64_t k = 0; k < p->nshards; k++) g->kept += keep[k] ? shard_rows(p, k) : 0;
    const int64_t rounds = (p->nshards + c->world - 1) / c->world;
    int rc = 0;
    for (int64_t round = 0; round < rounds && rc == 0; round++) {
        const int64_t k = round * c->world + c->rank;
        g->own = 0;
        g->ranks = 0;
        for (int64_t j = round * c->world; j < (round + 1) * c->world && j < p->nshards; j++) g->ranks += !keep[j];
        if (k < p->nshards && !mine[ST_FAILED]) {
            const size_t begin = (size_t)(k * p->shard_size);
            const size_t end = begin + (size_t)shard_rows(p, k);
            if (keep[k]) {
                mine[ST_KEPT_SHARDS]++;
                mine[ST_KEPT_IMAGES] += (int64_t)(end - begin);
            } else if (ssl_prep_job_shard(job, (int)k, &p->l, begin, end, c->rank == 0 ? progress_tick : NULL,
                                          g, err, errlen) < 0) {
                mine[ST_FAILED] = 1;
            } else {
                mine[ST_SHARDS]++;
                mine[ST_IMAGES] += (int64_t)(end - begin);
            }
        }
        if (job) ssl_prep_job_stats(job, &mine[ST_VERBATIM], &mine[ST_ENCODED], &mine[ST_BYTES]);
        ssl_allgather(c, mine, all, ST_N, SSL_I64);
        memset(sum, 0, ST_N * sizeof *sum);
        for (int r = 0; r < c->world; r++)
            for (int s = 0; s < ST_N; s++) sum[s] += all[(size_t)r * ST_N + s];
        rc = agree(c, (int)mine[ST_FAILED], err, errlen);
        g->base = sum[ST_IMAGES];
    }
    if (rounds == 0) rc = agree(c, (int)mine[ST_FAILED], err, errlen);
    ssl_free(keep);
    ssl_free(all);
    ssl_prep_job_close(job);
    return rc;
}

/* ---- the end (rank 0) ----------------------------------------------------------------------- */

static int finish(ssl_comm *c, plan *p, const int64_t *sum, double secs, char *err, size_t errlen)
{
    /* an earlier prep with a smaller shard size (before manifests, or with --force) */
    ssl_shard_remove_stale(p->out, p->prefix, (int)p->nshards);
    char path[SSL_PREP_PATH_LEN];
    size_t clen;
    char *ctext = ssl_prep_classes_text(&p->l, &clen);
    int rc = ssl_prep_write_text_file(p->classes_path, ctext, clen, err, errlen);
    ssl_free(ctext);
    if (rc < 0) return -1;
    int64_t disk = 0;
    for (int64_t k = 0; k < p->nshards; k++) {
        struct stat st;
        shard_path(path, sizeof path, p, k);
        if (stat(path, &st) == 0) disk += (int64_t)st.st_size;
    }
    const long long n = (long long)p->l.n, wrote = (long long)sum[ST_IMAGES];
    const size_t nc = p->l.nclasses;
    const int ns = (int)p->nshards;
    const double rate = secs > 0 ? (double)wrote / secs : 0;
    if (p->jpeg) {
        fprintf(stderr, "prep: %s: %lld images of %zu class%s, JPEG (%lld stored as they are, %lld encoded at "
                "quality %d), %d shard%s\n", p->what, n, nc, nc == 1 ? "" : "es", (long long)sum[ST_VERBATIM],
                (long long)sum[ST_ENCODED], p->quality, ns, ns == 1 ? "" : "s");
        fprintf(stderr, "prep: %s: %lld bytes of JPEG, %.0f bytes/image, %.1f images/s\n", p->what,
                (long long)sum[ST_BYTES], wrote ? (double)sum[ST_BYTES] / (double)wrote : 0.0, rate);
    } else {
        fprintf(stderr, "prep: %s: %lld images of %zu class%s, %dx%dx3, %d shard%s\n", p->what, n, nc,
                nc == 1 ? "" : "es", p->height, p->width, ns, ns == 1 ? "" : "s");
    }
    fprintf(stderr, "prep: %s: %d shard%s written, %lld kept from an earlier run; %lld bytes on disk, %.0f "
            "bytes/image; %lld images in %.1f s: %.1f images/s overall, %.1f per rank (%d rank%s)\n", p->what,
            (int)sum[ST_SHARDS], sum[ST_SHARDS] == 1 ? "" : "s", (long long)sum[ST_KEPT_SHARDS], (long long)disk,
            n ? (double)disk / (double)n : 0.0, wrote, secs, rate, rate / c->world, c->world,
            c->world == 1 ? "" : "s");
    if (p->l.skipped)
        fprintf(stderr, "prep: skipped %lld file%s that %s neither PNG nor JPEG (first: %s)\n",
                (long long)p->l.skipped, p->l.skipped == 1 ? "" : "s", p->l.skipped == 1 ? "is" : "are",
                p->l.first_skipped);
    if (p->l.nested)
        fprintf(stderr, "prep: ignored %lld folder%s inside %s (not searched)\n", (long long)p->l.nested,
                p->l.nested == 1 ? "" : "s", p->o->labels ? "the image folder" : "class folders");
    return 0;
}

static int check_opts(const char *src, const char *out, const ssl_prep_images_opts *o, const char *prefix,
                      int quality, char *err, size_t errlen)
{
    if (!src || !out) {
        ssl_seterr(err, errlen, "prep images: source and output folders are required");
        return -1;
    }
    if (strchr(prefix, '/')) {
        ssl_seterr(err, errlen, "prep images: prefix '%s' must be a file name prefix, without '/'", prefix);
        return -1;
    }
    if (o->size < 0 || o->size > MAX_OUT_SIZE) {
        ssl_seterr(err, errlen, "prep images: size %d must be in [0, %d] (0 keeps the images' size)", o->size,
               MAX_OUT_SIZE);
        return -1;
    }
    if ((o->format != SSL_PREP_RAW && o->format != SSL_PREP_JPEG) || quality < 1 || quality > 100) {
        ssl_seterr(err, errlen, "prep images: bad format %d or JPEG quality %d (1..100)", (int)o->format, quality);
        return -1;
    }
    if (o->classes && !o->labels) {
        ssl_seterr(err, errlen, "prep images: a classes file goes with a labels file (a flat folder)");
        return -1;
    }
    return 0;
}

int ssl_prep_images(const char *src_dir, const char *out_dir, const ssl_prep_images_opts *opts, char *err,
                    size_t errlen)
{
    const ssl_prep_images_opts defaults = {0};
    if (!opts) opts = &defaults;
    plan p;
    memset(&p, 0, sizeof p);
    p.src = src_dir;
    p.out = out_dir;
    p.o = opts;
    p.prefix = opts->prefix && opts->prefix[0] ? opts->prefix : "train";
    p.size = opts->size;
    p.shard_size = opts->shard_size > 0 ? opts->shard_size : DEFAULT_SHARD_SIZE;
    p.jpeg = opts->format == SSL_PREP_JPEG;
    p.quality = opts->quality ? opts->quality : 90;
    if (check_opts(src_dir, out_dir, opts, p.prefix, p.quality, err, errlen) < 0) return -1; /* same on every rank */
    if (snprintf(p.what, sizeof p.what, "%s/%s", out_dir, p.prefix) >= (int)sizeof p.what - 32 ||
        snprintf(p.manifest, sizeof p.manifest, "%s.manifest", p.what) >= (int)sizeof p.manifest ||
        snprintf(p.classes_path, sizeof p.classes_path, "%s/classes.txt", out_dir) >= (int)sizeof p.classes_path) {
        ssl_seterr(err, errlen, "%s: path too long", out_dir);
        return -1;
    }
    ssl_comm *own = opts->comm ? NULL : ssl_comm_local(), *c = opts->comm ? opts->comm : own;
    const double t0 = seconds();
    int rc = c->rank == 0 ? make_plan(&p, err, errlen) : 0;
    int64_t sum[ST_N] = {0};
    if (agree(c, rc < 0, err, errlen) == 0) {
        share_list(c, &p.l);
        int64_t h[4] = {p.nshards, p.height, p.width, p.resume};
        ssl_broadcast(c, h, 4, SSL_I64, 0);
        p.nshards = h[0], p.height = (int)h[1], p.width = (int)h[2], p.resume = (int)h[3];
        if (c->rank != 0 && !p.jpeg && p.size == 0) snprintf(p.first, sizeof p.first, "%s/%s", p.src, p.l.rel[0]);
        progress g = {.on = c->rank == 0 && !opts->quiet, .tty = isatty(STDERR_FILENO), .t0 = seconds(),
                      .what = p.what, .total = (int64_t)p.l.n, .every = PROGRESS_S};
        const char *every = getenv("SSL_PREP_PROGRESS_S"); /* seconds between lines (tests: 0, every image) */
        if (every && *every) g.every = atof(every);
        g.last = g.t0;
        rc = write_rounds(c, &p, &g, sum, err, errlen);
        if (g.printed && g.tty) fputc('\n', stderr);
        if (rc == 0) rc = agree(c, c->rank == 0 && finish(c, &p, sum, seconds() - t0, err, errlen) < 0, err, errlen);
    } else {
        rc = -1;
    }
    /* a failed prep that completed no shard leaves nothing to resume from */
    if (rc < 0 && c->rank == 0 && p.wrote_manifest && sum[ST_SHARDS] + sum[ST_KEPT_SHARDS] == 0) unlink(p.manifest);
    ssl_prep_list_free(&p.l);
    if (own) ssl_comm_free(own);
    return rc;
}

/* metrics.jsonl reader and training-curve PNG (see plot.h). The reader is a small hand-written scanner
 * for flat JSON objects that skips what it cannot use rather than failing the file, because the
 * file a user wants to look at is usually the one from a run that crashed mid-line. */
#include "io/plot.h"

#include "framework/core/check.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define FAIL(...)                                                                              \
    do {                                                                                       \
        if (err && errlen) snprintf(err, errlen, __VA_ARGS__);                                 \
        goto fail;                                                                             \
    } while (0)

static const char *const curve_key[SSL_PLOT_NPANELS] = {"loss", "lr", "knn_top1"};

/* ---- reader ------------------------------------------------------------------------------------ */

typedef struct {
    long long step;
    size_t line;    /* position in the file: the later line wins within a step */
    unsigned have;  /* bit k: curve_key[k] was present (a number or null) */
    double v[SSL_PLOT_NPANELS];
} record;

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    return p;
}

/* p at an opening quote. Copies up to cap-1 characters into key (escapes reduced to the escaped
 * character, which is all key matching needs) and returns the position after the closing quote, or
 * NULL when the string is unterminated (a torn line). A key longer than cap-1 is truncated and so
 * can never equal one of the short keys we look for. */
static const char *scan_string(const char *p, char *key, size_t cap)
{
    size_t n = 0;
    for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && !*++p) return NULL;
        if (key && n + 1 < cap) key[n++] = *p;
    }
    if (key && cap) key[n] = '\0';
    return *p == '"' ? p + 1 : NULL;
}

/* Nested objects and arrays are not written by io/metrics.c but are skipped, not rejected, so a
 * future richer record does not make the whole line unreadable. */
static const char *skip_nested(const char *p)
{
    int depth = 0;
    for (; *p; p++) {
        if (*p == '"') {
            p = scan_string(p, NULL, 0);
            if (!p) return NULL;
            p--;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if ((*p == '}' || *p == ']') && --depth == 0) {
            return p + 1;
        }
    }
    return NULL;
}

/* One value at p. *isnum is set for numbers and null (null and non-finite numbers as NaN); strings,
 * booleans and nested values are consumed and ignored. Returns the position after it or NULL. */
static const char *scan_value(const char *p, double *num, int *isnum)
{
    *isnum = 0;
    if (*p == '"') return scan_string(p, NULL, 0);
    if (*p == '{' || *p == '[') return skip_nested(p);
    if (!strncmp(p, "null", 4)) {
        *num = NAN;
        *isnum = 1;
        return p + 4;
    }
    if (!strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    /* strtod also takes NaN / Infinity, which Python's json module writes for non-finite floats. */
    char *end;
    const double v = strtod(p, &end);
    if (end == p) return NULL;
    *num = isfinite(v) ? v : NAN;
    *isnum = 1;
    return end;
}

/* One flat object starting at p (leading blanks allowed) and ending the line. Returns 0 when it is
 * well formed and carries an integral "step", 1 when it is well formed without one (a run
 * header), -1 otherwise. */
static int scan_object(const char *p, record *r)
{
    int have_step = 0;
    r->have = 0;
    p = skip_ws(p);
    if (*p != '{') return -1;
    p = skip_ws(p + 1);
    while (*p != '}') {
        char key[64];
        double v = 0.0;
        int isnum;
        if (*p != '"' || !(p = scan_string(p, key, sizeof key))) return -1;
        p = skip_ws(p);
        if (*p != ':') return -1;
        if (!(p = scan_value(skip_ws(p + 1), &v, &isnum))) return -1;
        if (isnum && !strcmp(key, "step")) {
            /* 2^53 bound: beyond it the double no longer holds the integer the writer printed. */
            have_step = isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0;
            if (have_step) r->step = (long long)v;
        } else if (isnum) {
            for (int k = 0; k < SSL_PLOT_NPANELS; k++)
                if (!strcmp(key, curve_key[k])) {
                    r->v[k] = v;
                    r->have |= 1u << k;
                }
        }
        p = skip_ws(p);
        if (*p == ',') p = skip_ws(p + 1); /* a trailing comma before '}' is tolerated */
        else if (*p != '}') return -1;
    }
    return *skip_ws(p + 1) ? -1 : have_step ? 0 : 1;
}

static int record_cmp(const void *a, const void *b)
{
    const record *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

void ssl_plot_series_free(ssl_plot_series *s)
{
    for (int k = 0; k < SSL_PLOT_NPANELS; k++) {
        ssl_free(s->curve[k].step);
        ssl_free(s->curve[k].value);
    }
    memset(s, 0, sizeof *s);
}

int ssl_plot_read(const char *path, ssl_plot_series *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    record *recs = NULL;
    size_t nrec = 0, cap = 0, nline = 0;
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    FILE *fp = fopen(path, "r");
    if (!fp) FAIL("%s: %s", path, strerror(errno));
    errno = 0;
    while ((len = getline(&line, &linecap, fp)) != -1) {
        nline++;
        /* A crash can leave a zero-filled block before the resumed run's lines: read through it. */
        for (ssize_t i = 0; i < len; i++)
            if (!line[i]) line[i] = ' ';
        if (!*skip_ws(line)) continue;
        if (nrec == cap) {
            cap = cap ? 2 * cap : 256;
            record *grown = realloc(recs, cap * sizeof *recs);
            if (!grown) FAIL("%s: out of memory after %zu records", path, nrec);
            recs = grown;
        }
        /* A torn record followed on the same line by a resumed run's record: try each '{'. */
        record *r = &recs[nrec];
        int ok = 0, header = 0;
        for (const char *s = line; !ok && (s = strchr(s, '{')); s++) {
            int st = scan_object(s, r);
            ok = st == 0;
            header |= st == 1;
        }
        if (ok) {
            r->line = nline;
            nrec++;
        } else if (!header) {
            out->skipped++;
        }
    }
    if (ferror(fp)) FAIL("%s: read error: %s", path, strerror(errno ? errno : EIO));
    if (!nrec) FAIL("%s: no parsable records (%zu lines skipped)", path, out->skipped);

    qsort(recs, nrec, sizeof *recs, record_cmp);
    size_t nsteps = 1;
    for (size_t i = 1; i < nrec; i++) nsteps += recs[i].step != recs[i - 1].step;
    for (int k = 0; k < SSL_PLOT_NPANELS; k++) {
        out->curve[k].step = ssl_malloc(nsteps * sizeof(long long));
        out->curve[k].value = ssl_malloc(nsteps * sizeof(double));
    }
    for (size_t i = 0, j; i < nrec; i = j) {
        record m = {.have = 0};
        for (j = i; j < nrec && recs[j].step == recs[i].step; j++)
            for (int k = 0; k < SSL_PLOT_NPANELS; k++)
                if (recs[j].have & (1u << k)) {
                    m.v[k] = recs[j].v[k];
                    m.have |= 1u << k;
                }
        for (int k = 0; k < SSL_PLOT_NPANELS; k++)
            if (m.have & (1u << k)) {
                ssl_plot_curve *c = &out->curve[k];
                c->step[c->n] = recs[i].step;
                c->value[c->n++] = m.v[k];
            }
    }
    out->steps = nsteps;
    out->first_step = recs[0].step;
    out->last_step = recs[nrec - 1].step;
    free(recs);
    free(line);
    fclose(fp);
    return 0;
fail:
    free(recs);
    free(line);
    if (fp) fclose(fp);
    ssl_plot_series_free(out);
    return -1;
}

/* ---- renderer ---------------------------------------------------------------------------------- */

/* 5x7 glyphs, one byte per row, bit 4 = leftmost column (the HD44780 character ROM shapes), in a
 * 5x9 cell whose two extra rows hold only the descenders of , g j p q y: squeezed into 7 rows they
 * read as 9-like shapes. Indexed by character - 32; characters not listed render as '?'. */
#define GLYPH_ROWS 9
static const uint8_t font[95][GLYPH_ROWS] = {
    ['%' - 32] = {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},
    ['(' - 32] = {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},
    [')' - 32] = {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08},
    ['+' - 32] = {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00},
    [',' - 32] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x04, 0x08},
    ['-' - 32] = {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00},
    ['.' - 32] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C},
    ['/' - 32] = {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00},
    ['0' - 32] = {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E},
    ['1' - 32] = {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
    ['2' - 32] = {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F},
    ['3' - 32] = {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
    ['4' - 32] = {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02},
    ['5' - 32] = {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
    ['6' - 32] = {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E},
    ['7' - 32] = {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
    ['8' - 32] = {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E},
    ['9' - 32] = {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},
    [':' - 32] = {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00},
    ['=' - 32] = {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00},
    ['?' - 32] = {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04},
    ['@' - 32] = {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E},
    ['A' - 32] = {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11},
    ['B' - 32] = {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},
    ['C' - 32] = {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E},
    ['D' - 32] = {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},
    ['E' - 32] = {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F},
    ['F' - 32] = {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},
    ['G' - 32] = {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F},
    ['H' - 32] = {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},
    ['I' - 32] = {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},
    ['J' - 32] = {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},
    ['K' - 32] = {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11},
    ['L' - 32] = {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},
    ['M' - 32] = {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11},
    ['N' - 32] = {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},
    ['O' - 32] = {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},
    ['P' - 32] = {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},
    ['Q' - 32] = {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D},
    ['R' - 32] = {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},
    ['S' - 32] = {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E},
    ['T' - 32] = {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},
    ['U' - 32] = {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},
    ['V' - 32] = {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},
    ['W' - 32] = {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A},
    ['X' - 32] = {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},
    ['Y' - 32] = {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04},
    ['Z' - 32] = {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},
    ['_' - 32] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F},
    ['a' - 32] = {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F},
    ['b' - 32] = {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E},
    ['c' - 32] = {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E},
    ['d' - 32] = {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F},
    ['e' - 32] = {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E},
    ['f' - 32] = {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08},
    ['g' - 32] = {0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E},
    ['h' - 32] = {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11},
    ['i' - 32] = {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E},
    ['j' - 32] = {0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},
    ['k' - 32] = {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12},
    ['l' - 32] = {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},
    ['m' - 32] = {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11},
    ['n' - 32] = {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11},
    ['o' - 32] = {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E},
    ['p' - 32] = {0x00, 0x00, 0x1E, 0x11, 0x11, 0x11, 0x1E, 0x10, 0x10},
    ['q' - 32] = {0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x01},
    ['r' - 32] = {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10},
    ['s' - 32] = {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E},
    ['t' - 32] = {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06},
    ['u' - 32] = {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D},
    ['v' - 32] = {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04},
    ['w' - 32] = {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A},
    ['x' - 32] = {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11},
    ['y' - 32] = {0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E},
    ['z' - 32] = {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F},
};

#define W SSL_PLOT_WIDTH
#define H SSL_PLOT_HEIGHT
#define PANEL_H (H / SSL_PLOT_NPANELS)
#define MARGIN_L 124 /* room for a 9-character y label at text scale 2 */
#define MARGIN_R 24
#define FRAME_TOP 30    /* title row above the frame */
#define FRAME_BOTTOM 28 /* step labels below it */
#define INSET 6         /* data kept off the frame so the line never hides under it */
#define SCALE 2         /* 5x7 glyphs doubled: readable without a second font */
#define GRID_DIV 5

#define INK 0x282828
#define LABEL 0x505050
#define FRAME 0x5a5a5a
#define GRID 0xe6e6e6

static const uint32_t curve_rgb[SSL_PLOT_NPANELS] = {SSL_PLOT_LOSS_RGB, SSL_PLOT_LR_RGB, SSL_PLOT_KNN_RGB};
static const char *const curve_title[SSL_PLOT_NPANELS] = {"training loss", "learning rate", "kNN top-1 (%)"};

static void put(uint8_t *img, int x, int y, uint32_t rgb)
{
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    uint8_t *p = img + ((size_t)y * W + (size_t)x) * 3;
    p[0] = (uint8_t)(rgb >> 16);
    p[1] = (uint8_t)(rgb >> 8);
    p[2] = (uint8_t)rgb;
}

static void fill(uint8_t *img, int x0, int y0, int x1, int y1, uint32_t rgb)
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) put(img, x, y, rgb);
}

/* Bresenham; brush 2 draws a 2x2 pen so a steep or shallow line reads equally well. */
static void line(uint8_t *img, int x0, int y0, int x1, int y1, int brush, uint32_t rgb)
{
    const int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) {
        fill(img, x0, y0, x0 + brush - 1, y0 + brush - 1, rgb);
        if (x0 == x1 && y0 == y1) break;
        const int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}

static int text_width(const char *s) { return s[0] ? (int)strlen(s) * 6 * SCALE - SCALE : 0; }

/* Text with its top-left corner at (x, y). */
static void text(uint8_t *img, int x, int y, const char *s, uint32_t rgb)
{
    for (; *s; s++, x += 6 * SCALE) {
        const int c = (unsigned char)*s;
        if (c == ' ') continue;
        const uint8_t *g = c > 32 && c < 127 ? font[c - 32] : font['?' - 32];
        int blank = 1;
        for (int row = 0; row < GLYPH_ROWS; row++) blank &= !g[row];
        if (blank) g = font['?' - 32];
        for (int row = 0; row < GLYPH_ROWS; row++)
            for (int col = 0; col < 5; col++)
                if (g[row] & (0x10 >> col))
                    fill(img, x + col * SCALE, y + row * SCALE, x + col * SCALE + SCALE - 1,
                         y + row * SCALE + SCALE - 1, rgb);
    }
}

/* Text centred on column cx, kept inside the image. */
static void text_centered(uint8_t *img, int cx, int y, const char *s, uint32_t rgb)
{
    int x = cx - text_width(s) / 2;
    if (x + text_width(s) > W - 2) x = W - 2 - text_width(s);
    if (x < 2) x = 2;
    text(img, x, y, s, rgb);
}

ssl_plot_rect ssl_plot_data_rect(int panel)
{
    ssl_plot_rect r = {MARGIN_L + INSET, panel * PANEL_H + FRAME_TOP + INSET, W - 1 - MARGIN_R - INSET,
                       (panel + 1) * PANEL_H - FRAME_BOTTOM - INSET};
    return r;
}

static int map_x(const ssl_plot_series *s, ssl_plot_rect r, long long step)
{
    if (s->last_step == s->first_step) return (r.x0 + r.x1) / 2;
    const double t = (double)(step - s->first_step) / (double)(s->last_step - s->first_step);
    return r.x0 + (int)lround(t * (r.x1 - r.x0));
}

static int map_y(ssl_plot_rect r, double v, double lo, double hi)
{
    if (!(hi > lo)) return (r.y0 + r.y1) / 2;
    return r.y1 - (int)lround((v - lo) / (hi - lo) * (r.y1 - r.y0));
}

static void draw_panel(uint8_t *img, const ssl_plot_series *s, int p)
{
    const ssl_plot_rect r = ssl_plot_data_rect(p);
    const int fx0 = r.x0 - INSET, fy0 = r.y0 - INSET, fx1 = r.x1 + INSET, fy1 = r.y1 + INSET;
    const ssl_plot_curve *c = &s->curve[p];
    const uint32_t rgb = curve_rgb[p];
    char buf[96];

    for (int i = 0; i <= GRID_DIV; i++) {
        const int gx = r.x0 + i * (r.x1 - r.x0) / GRID_DIV, gy = r.y0 + i * (r.y1 - r.y0) / GRID_DIV;
        line(img, gx, fy0 + 1, gx, fy1 - 1, 1, GRID);
        line(img, fx0 + 1, gy, fx1 - 1, gy, 1, GRID);
    }
    line(img, fx0, fy0, fx1, fy0, 1, FRAME);
    line(img, fx0, fy1, fx1, fy1, 1, FRAME);
    line(img, fx0, fy0, fx0, fy1, 1, FRAME);
    line(img, fx1, fy0, fx1, fy1, 1, FRAME);

    /* Step ticks on every panel, so each one reads on its own. */
    const int sx0 = map_x(s, r, s->first_step), sx1 = map_x(s, r, s->last_step);
    const int label_y = fy1 + 6;
    line(img, sx0, fy1 + 1, sx0, fy1 + 4, 1, FRAME);
    snprintf(buf, sizeof buf, "%lld", s->first_step);
    text_centered(img, sx0, label_y, buf, LABEL);
    if (sx1 != sx0) {
        line(img, sx1, fy1 + 1, sx1, fy1 + 4, 1, FRAME);
        snprintf(buf, sizeof buf, "%lld", s->last_step);
        text_centered(img, sx1, label_y, buf, LABEL);
    }
    /* The axis name sits between the end labels; a single step puts its label there instead. */
    if (p == SSL_PLOT_NPANELS - 1 && sx1 != sx0)
        text_centered(img, (fx0 + fx1) / 2, label_y, "step", LABEL);

    double lo = INFINITY, hi = -INFINITY, last = NAN;
    for (size_t i = 0; i < c->n; i++)
        if (isfinite(c->value[i])) {
            lo = fmin(lo, c->value[i]);
            hi = fmax(hi, c->value[i]);
            last = c->value[i];
        }
    text(img, fx0, p * PANEL_H + 8, curve_title[p], INK);
    if (!isfinite(lo)) {
        const char *msg = c->n ? "no finite values" : p == SSL_PLOT_PANEL_KNN ? "no kNN records" : "no records";
        text_centered(img, (fx0 + fx1) / 2, (fy0 + fy1) / 2 - 7, msg, LABEL);
        return;
    }
    if (p == SSL_PLOT_PANEL_KNN) snprintf(buf, sizeof buf, "last %.4g  best %.4g", last, hi);
    else snprintf(buf, sizeof buf, "last %.4g", last);
    text(img, fx1 - text_width(buf), p * PANEL_H + 8, buf, rgb);

    const int ylo = map_y(r, lo, lo, hi), yhi = map_y(r, hi, lo, hi);
    line(img, fx0 - 4, ylo, fx0 - 1, ylo, 1, FRAME);
    snprintf(buf, sizeof buf, "%.4g", lo);
    text(img, fx0 - 8 - text_width(buf), ylo - 7, buf, LABEL);
    if (yhi != ylo) {
        line(img, fx0 - 4, yhi, fx0 - 1, yhi, 1, FRAME);
        snprintf(buf, sizeof buf, "%.4g", hi);
        text(img, fx0 - 8 - text_width(buf), yhi - 7, buf, LABEL);
    }

    /* Consecutive finite values are joined; a null breaks the line. Sparse kNN evaluations and
     * points left alone by nulls also get a marker, or a single value would be one lost pixel. */
    for (size_t i = 0; i < c->n; i++) {
        if (!isfinite(c->value[i])) continue;
        const int x = map_x(s, r, c->step[i]), y = map_y(r, c->value[i], lo, hi);
        const int prev = i > 0 && isfinite(c->value[i - 1]);
        const int next = i + 1 < c->n && isfinite(c->value[i + 1]);
        if (prev)
            line(img, map_x(s, r, c->step[i - 1]), map_y(r, c->value[i - 1], lo, hi), x, y, 2, rgb);
        if (p == SSL_PLOT_PANEL_KNN || (!prev && !next)) fill(img, x - 2, y - 2, x + 2, y + 2, rgb);
    }
}

int ssl_plot_render(const ssl_plot_series *s, const char *png_path, char *err, size_t errlen)
{
    uint8_t *img = ssl_malloc((size_t)W * H * 3);
    char *tmp = ssl_malloc(strlen(png_path) + 5);
    FILE *fp = NULL;
    int created = 0;
    memset(img, 0xff, (size_t)W * H * 3);
    for (int p = 0; p < SSL_PLOT_NPANELS; p++) draw_panel(img, s, p);

    sprintf(tmp, "%s.tmp", png_path);
    fp = fopen(tmp, "wb");
    if (!fp) FAIL("%s: %s", png_path, strerror(errno));
    created = 1;
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = W;
    pi.height = H;
    pi.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_stdio(&pi, fp, 0, img, W * 3, NULL)) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot write PNG: %s", png_path, pi.message);
        png_image_free(&pi);
        goto fail;
    }
    /* fclose flushes: a full disk shows up here, not in the encoder. */
    errno = 0;
    const int bad = ferror(fp);
    const int closed = fclose(fp);
    fp = NULL;
    if (closed || bad) FAIL("%s: %s", png_path, strerror(errno ? errno : EIO));
    if (rename(tmp, png_path)) FAIL("%s: %s", png_path, strerror(errno));
    ssl_free(tmp);
    ssl_free(img);
    return 0;
fail:
    if (fp) fclose(fp);
    if (created) remove(tmp);
    ssl_free(tmp);
    ssl_free(img);
    return -1;
}

int ssl_plot_metrics(const char *metrics_path, const char *png_path, char *err, size_t errlen)
{
    ssl_plot_series s;
    if (ssl_plot_read(metrics_path, &s, err, errlen)) return -1;
    const int rc = ssl_plot_render(&s, png_path, err, errlen);
    ssl_plot_series_free(&s);
    return rc;
}

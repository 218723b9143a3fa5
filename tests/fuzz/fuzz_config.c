/* libFuzzer harness for the config loader (io/config.c): YAML text plus `section.key=value`
 * overrides, through all three entry points (ssl_config_parse from memory, ssl_config_load from a
 * file with overrides, ssl_config_set + ssl_config_validate).
 *
 * Input: YAML text, then up to MAX_OV overrides, each introduced by a NUL byte:
 *     "run:\n  seed: 3\n" "\0" "optim.lr=0.1" "\0" "data.train=x*.h5"
 * (a NUL cannot occur in a config file: libyaml rejects it, so nothing is lost by the split).
 *
 * Invariants checked (abort() on violation, so libFuzzer saves the input):
 *  - every rejection comes with a non-empty message; a message about the text names the file as
 *    "NAME:LINE:COL: " (config.h: "Errors name file:line:col"), except libyaml reader errors
 *    (bytes that are not text: invalid UTF-8, control characters), which give "NAME: invalid input
 *    at byte N"; a message about an override starts "override 'TEXT': " with that override;
 *  - parse-from-memory and load-from-file agree (same verdict, same message but for the name)
 *    when there are no overrides;
 *  - an accepted config, written back with ssl_config_to_yaml, reads back to identical values
 *    (config.h promises this round trip), and printing it does not fault. */
#include "fuzz_common.h"

#include "io/config.h"

#include <ctype.h>

#define MAX_OV 4
#define OV_MAX 512 /* bytes of one override kept (the rest is dropped) */
#define ERR_MAX 4096
#define NAME "fuzz.yaml"

static FILE *devnull;
/* ssl_config_defaults converts every default through libyaml (~60 parser instances): computed once,
 * as that is most of an execution's time otherwise. */
static ssl_config defaults;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    ssl_config_defaults(&defaults);
    fz_scratch();
    return 0;
}

/* "NAME:LINE:COL: " with LINE, COL >= 1. */
static int has_location(const char *err, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(err, name, n) != 0 || err[n] != ':') return 0;
    const char *p = err + n + 1;
    for (int field = 0; field < 2; field++) {
        if (!isdigit((unsigned char)*p) || *p == '0') return 0;
        while (isdigit((unsigned char)*p)) p++;
        if (*p++ != ':') return 0;
    }
    return *p == ' ';
}

/* A rejection of text labelled `name`. */
static void check_file_error(const char *err, const char *name)
{
    FZ_CHECK(err[0] != '\0', "error return with an empty message (file %s)", name);
    size_t n = strlen(name);
    FZ_CHECK(strncmp(err, name, n) == 0 && err[n] == ':', "message does not start with '%s:': %s",
             name, err);
    if (has_location(err, name)) return;
    const char *rest = err + n + 1;
    FZ_CHECK(strncmp(rest, " invalid input at byte ", 23) == 0 ||
                 strncmp(rest, " out of memory", 14) == 0,
             "message about '%s' carries no line:column: %s", name, err);
}

static void roundtrip(const ssl_config *c, const char *what)
{
    char *y = ssl_config_to_yaml(c);
    FZ_CHECK(y != NULL, "ssl_config_to_yaml returned NULL");
    ssl_config d = defaults;
    char err[ERR_MAX] = "";
    int rc = ssl_config_parse(&d, y, strlen(y), "roundtrip.yaml", err, sizeof err);
    FZ_CHECK(rc == 0, "config accepted by %s does not read back: %s\n--- written:\n%s", what, err,
             y);
    char first[128] = "";
    int nd = ssl_config_compare(c, &d, first, sizeof first);
    if (nd != 0) {
        const ssl_config_key *k = ssl_config_find(first);
        char a[4200] = "", b[4200] = "";
        if (k) {
            ssl_config_format(c, k, a, sizeof a);
            ssl_config_format(&d, k, b, sizeof b);
        }
        FZ_CHECK(nd == 0, "%d keys differ after a round trip of a config accepted by %s; first "
                 "'%s': '%s' became '%s'",
                 nd, what, first, a, b);
    }
    free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* split: text \0 ov \0 ov ... */
    const char *text = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char ovbuf[MAX_OV][OV_MAX + 1];
    char *ov[MAX_OV];
    int nov = 0;
    for (const uint8_t *p = nul; p && nov < MAX_OV;) {
        const uint8_t *s = p + 1, *end = data + size;
        const uint8_t *e = memchr(s, 0, (size_t)(end - s));
        size_t l = (size_t)((e ? e : end) - s);
        if (l > OV_MAX) l = OV_MAX;
        memcpy(ovbuf[nov], s, l);
        ovbuf[nov][l] = '\0';
        ov[nov] = ovbuf[nov];
        nov++;
        p = e;
    }

    /* 1. from memory */
    ssl_config c = defaults;
    char err1[ERR_MAX] = "";
    int rc1 = ssl_config_parse(&c, text, tlen, NAME, err1, sizeof err1);
    if (rc1 != 0) check_file_error(err1, NAME);
    else roundtrip(&c, "ssl_config_parse");

    /* 2. from a file, then the overrides. ssl_config_load starts with ssl_config_defaults, most of
     * an execution's time: without overrides, where it only repeats step 1 from a file (and is
     * checked to agree), it runs for a quarter of the inputs, chosen by a hash of the input so that
     * a saved input reproduces. */
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < size; i++) hash = (hash ^ data[i]) * 16777619u;
    if (nov == 0 && hash % 4 != 0) return 0;
    char path[512];
    fz_write_file(NAME, data, tlen, path, sizeof path);
    ssl_config c2;
    char err2[ERR_MAX] = "";
    int rc2 = ssl_config_load(&c2, path, nov, ov, err2, sizeof err2);
    if (rc2 != 0) {
        FZ_CHECK(err2[0] != '\0', "ssl_config_load failed with an empty message");
        if (strncmp(err2, "override '", 10) == 0) {
            int named = 0;
            for (int i = 0; i < nov; i++) {
                size_t l = strlen(ov[i]);
                named |= strncmp(err2 + 10, ov[i], l) == 0 && strncmp(err2 + 10 + l, "': ", 3) == 0;
            }
            FZ_CHECK(named, "override message does not quote an override: %s", err2);
        } else {
            check_file_error(err2, path);
        }
    } else {
        if (nov > 0) roundtrip(&c2, "ssl_config_load"); /* else c2 == c, compared below */
        ssl_config_print(&c2, devnull);
    }
    if (nov == 0) {
        FZ_CHECK((rc1 == 0) == (rc2 == 0), "parse and load disagree: parse %s, load %s",
                 rc1 ? err1 : "ok", rc2 ? err2 : "ok");
        if (rc1 != 0) {
            size_t n1 = strlen(NAME), n2 = strlen(path);
            FZ_CHECK(strcmp(err1 + n1, err2 + n2) == 0, "parse and load messages differ:\n  %s\n  %s",
                     err1, err2);
        } else {
            char first[128] = "";
            FZ_CHECK(ssl_config_compare(&c, &c2, first, sizeof first) == 0,
                     "parse and load give different values (first '%s')", first);
        }
    }

    if (nov == 0) return 0;

    /* 3. the overrides one by one through ssl_config_set, then the cross-key rules */
    ssl_config c3 = defaults;
    for (int i = 0; i < nov; i++) {
        char *eq = strchr(ov[i], '=');
        if (!eq) continue;
        *eq = '\0';
        char err3[ERR_MAX] = "";
        if (ssl_config_set(&c3, ov[i], eq + 1, err3, sizeof err3) != 0)
            FZ_CHECK(err3[0] != '\0', "ssl_config_set('%s') failed with an empty message", ov[i]);
        *eq = '=';
    }
    char err4[ERR_MAX] = "";
    if (ssl_config_validate(&c3, err4, sizeof err4) != 0)
        FZ_CHECK(err4[0] != '\0', "ssl_config_validate failed with an empty message");
    else
        roundtrip(&c3, "ssl_config_set");
    return 0;
}

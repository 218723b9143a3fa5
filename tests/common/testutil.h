/* Test helpers: failure counting, tolerance checks, finite-difference gradient checks and the
 * reader for PyTorch-generated fixtures (tests/ref/make_fixtures.py writes them).
 * Tests run on the CPU backend, whose device memory is host memory. */
#ifndef SSL_TESTS_TESTUTIL_H
#define SSL_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "framework/layers/layer.h"
#include "framework/tensor/params.h"

/* Number of failed checks so far; tests `return ssl_test_exit();`. */
extern int ssl_test_failures;
int ssl_test_exit(void);

#define SSL_EXPECT(cond, ...)                                                                  \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            ssl_test_failures++;                                                               \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
        }                                                                                      \
    } while (0)

/* |got - want| <= atol + rtol * |want| elementwise; prints the worst element; returns 1 if ok. */
int ssl_test_close(const char *what, const float *got, const float *want, size_t n, double atol,
                   double rtol);

/* Deterministic test data. */
void ssl_test_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);
double ssl_test_dot(const float *a, const float *b, size_t n);

/* Finite-difference gradient check of a scalar function of host buffer x.
 * loss(ud) recomputes the scalar from the current x (accumulate it in double). grad is the analytic
 * gradient. Checks up to max_checks evenly spread elements with central differences of step eps;
 * an element passes when |fd - grad| <= atol + rtol * max(|fd|, |grad|), or when grad matches one of
 * the one-sided differences that way (a kink within eps on the other side). Returns 1 if all pass. */
typedef double (*ssl_test_loss_fn)(void *ud);
int ssl_test_gradcheck(const char *what, ssl_test_loss_fn loss, void *ud, float *x, size_t n,
                       const float *grad, int max_checks, float eps, double atol, double rtol);

/* Directional finite-difference check of a whole tensor: perturb all of x along a random direction
 * v (uniform in [-1,1]) and compare (L(x+eps v) - L(x-eps v)) / 2eps with grad.v, relative to
 * |grad||v|. Robust where per-element differences are not (many ReLU kinks, fp32 noise), and still
 * fails for a wrong or missing gradient term, which moves grad.v by a sizeable fraction of |grad||v|. */
int ssl_test_gradcheck_dir(const char *what, ssl_test_loss_fn loss, void *ud, float *x, size_t n,
                           const float *grad, uint64_t seed, float eps, double rtol);

struct ssl_comm;
/* The end of an MPI test: every rank's failures summed (all verdicts count), the communicator freed,
 * MPI finalised; the exit status for main. */
int ssl_test_mpi_exit(struct ssl_comm *comm);

/* The set-up of most model tests: a CPU context, empty parameter and buffer sets, and the plan over
 * them that models and heads are built into. */
ssl_plan ssl_test_bench_init(ssl_ctx *c, ssl_params *p, ssl_params *b);
void ssl_test_bench_free(ssl_ctx *c, ssl_params *p, ssl_params *b);

/* Fixture files: a sequence of records [u32 name_len][name][u32 ndim][i64 shape[ndim]][f32 data]. */
typedef struct ssl_fixture ssl_fixture;
/* Loads $SSL_FIXTURES/<file>; returns NULL (and prints why) when absent. */
ssl_fixture *ssl_fixture_load(const char *file);
/* Tensor by name; aborts with the name when absent. *n receives its element count if non-NULL. */
const float *ssl_fixture_get(const ssl_fixture *f, const char *name, size_t *n);
int ssl_fixture_has(const ssl_fixture *f, const char *name);
void ssl_fixture_free(ssl_fixture *f);
/* Every segment of p from the fixture tensors "<kind>/<segment name>" (torchvision's names); a missing
 * or mis-sized tensor is a test failure. Returns 1 when all were loaded. */
int ssl_fixture_load_segments(const ssl_fixture *f, ssl_params *p, const char *kind);
/* Segments [0, nseg) of p's layout from the tensors "<prefix><segment name>" into dst (a teacher, a
 * second buffer); 1 when all were there with the right sizes. */
int ssl_fixture_copy_segments(const ssl_fixture *f, const char *prefix, const ssl_params *p, float *dst, int nseg);
/* Compare segments [0, nseg) of got (p's layout) with "<prefix><name>", each relative to its largest
 * element (fp32 on both sides, other summation orders), with an absolute floor of rtol / 100 for tensors
 * whose exact value is 0 (a Linear's bias before BatchNorm: both sides hold fp32 noise, 1e-6 measured on
 * an AVX2 EPYC). */
void ssl_fixture_compare_segments(const ssl_fixture *f, const char *prefix, const ssl_params *p, const float *got,
                                  int nseg, double rtol);

/* got against a float64 reference: the largest error relative to want's largest element, printed and
 * checked against rtol; returns it (for a summary of the worst). */
double ssl_test_close_rel(const char *what, const float *got, const float *want, size_t n, double rtol);
/* The largest relative error ssl_test_close_rel / _scalar have seen, for a summary line. */
extern double ssl_test_worst_rel;
/* A scalar's relative error, printed and checked; returns it. */
double ssl_test_close_scalar(const char *what, double got, double want, double rtol);

/* max |x_i|: the scale of a reference tensor, for tolerances relative to it. */
float ssl_test_max_abs(const float *x, size_t n);

#endif

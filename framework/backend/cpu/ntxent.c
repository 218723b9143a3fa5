/* NT-Xent rows: masked softmax, loss and its logit gradient fused in one pass per row, so the
 * (nq, M) logit block is touched twice in total and never copied. */
#include "framework/backend/cpu/cpu.h"

#include <math.h>

void ssl_cpu_ntxent_rows(ssl_ctx *c, int64_t nq, int64_t M, int64_t row0, int64_t half, float *S,
                         double *loss_sum)
{
    (void)c;
    double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (int64_t i = 0; i < nq; i++) {
        float *s = S + i * M;
        const int64_t self = row0 + i, chunk = 2 * half;
        const int64_t pos = self / chunk * chunk + (self % chunk + half) % chunk;
        float mx = -INFINITY;
        for (int64_t j = 0; j < M; j++)
            if (j != self && s[j] > mx) mx = s[j];
        const double spos = (double)s[pos] - mx; /* read before exp: e_pos may underflow */
        double sum = 0;
        for (int64_t j = 0; j < M; j++) {
            float e = j == self ? 0.0f : expf(s[j] - mx);
            sum += e;
            s[j] = e;
        }
        total += log(sum) - spos; /* logsumexp - s_pos, both relative to mx */
        const float inv = (float)(1.0 / sum);
        for (int64_t j = 0; j < M; j++) s[j] *= inv;
        s[pos] -= 1.0f;
    }
    *loss_sum = total;
}

/* The label-efficiency protocol's training subset (SimCLR / BYOL: fine-tune on 1% or 10% of the
 * labels): a class-balanced, seeded choice of samples that depends only on the labels, the fraction
 * and the seed, so every rank computes the same subset alone and a run resumed on another rank count
 * trains on the same images. */
#ifndef SSL_IO_LABEL_SUBSET_H
#define SSL_IO_LABEL_SUBSET_H

#include <stddef.h>
#include <stdint.h>

/* From labels (n) in [0, num_classes): every class c with n_c samples contributes
 * k_c = max(1, round(fraction * n_c)) of them (the same fraction of each class, so a balanced
 * dataset gives equal counts), namely the first k_c of that class in a Philox permutation of [0, n)
 * keyed by seed alone (the sampler's epoch permutations use other keys). Classes without samples
 * contribute none. The chosen indices are returned ascending in a malloc'd array (ssl_free) and
 * their count in *count. fraction in (0, 1]; 1 returns every index. NULL with a message in err for
 * a label outside [0, num_classes) or a fraction out of range. */
int64_t *ssl_label_subset(const int32_t *labels, int64_t n, int num_classes, double fraction, uint64_t seed,
                          int64_t *count, char *err, size_t errlen);

#endif

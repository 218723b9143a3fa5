/* Shuffle-BN (MoCo, REFERENCE §2.3): run a batch function (a key encoder in training mode) on random
 * slices of the global batch instead of this rank's own samples, so BatchNorm statistics never pair a
 * query with its own key. The images of all ranks are all-gathered, every rank draws the same
 * permutation from `key` (no broadcast needed), encodes its slice of the permuted batch in `groups`
 * equal sub-batches (one fn call each, BN over each alone), and the outputs are all-gathered and
 * un-shuffled: row i of the result belongs to this rank's sample i.
 * The groups are contiguous pieces of the permuted global batch, so P ranks with G/P groups each compute
 * what one rank with G groups computes (the single-GPU SplitBatchNorm of MoCo's CIFAR demo, and the
 * paper's 8-GPU shuffle on any rank count). One rank and one group: fn(x) (a permutation of one batch is
 * invisible to BatchNorm). fn must run its BatchNorm over its own batch only (the caller clears
 * c->bn_comm) and return a 2-D tensor; it may be called several times a step (forward only). Scratch
 * from the activation arena. */
#ifndef SSL_LAYERS_SHUFFLE_BN_H
#define SSL_LAYERS_SHUFFLE_BN_H

#include "framework/backend/backend.h"
#include "framework/tensor/tensor.h"

struct ssl_comm;

/* x (N, ...) -> (N, D) rows; the output must be a 2-D tensor. */
typedef ssl_tensor (*ssl_batch_fn)(ssl_ctx *c, ssl_tensor x, void *ud);

/* x (N, ...) with N a multiple of groups (>= 1) -> (N, D) rows. */
ssl_tensor ssl_shuffled_forward(ssl_ctx *c, struct ssl_comm *comm, ssl_tensor x, uint64_t key, int groups,
                                ssl_batch_fn fn, void *ud);

#endif

/* Calibration of per-layer KV widths: the cores of the public vkmix_calibrate_*
 * functions, on fp32 reference weights and bare hyper-parameters so tests can
 * run them on synthetic models without a device. */
#ifndef VKM_CALIBRATE_H
#define VKM_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>

#include "ref/ref_model.h"
#include "vkmix.h"

/* Widths a layer may get from the optimizer, in increasing cost. */
#define VKM_CALIB_N_CHOICES 5 /* 2, 3, 4, 8, 16 */

/* Labels a sequence of T tokens predicts (the ones before its first padding token, minus one). */
uint32_t vkm_calib_labels(const int32_t *seq, uint32_t T);

vkmix_error vkm_calib_importance(const vkm_ref_weights *w, const int32_t *tokens, uint32_t n_seq, uint32_t T,
                                 int n_threads, vkmix_calibrate_progress_fn progress, void *user, float *loss,
                                 float *imp_k, float *imp_v, char *err, size_t errlen);

vkmix_error vkm_calib_kv_error(const vkm_ref_weights *w, const int32_t *tokens, uint32_t n_seq, uint32_t T,
                               uint32_t group, uint32_t sinks, int n_threads, vkmix_calibrate_progress_fn progress,
                               void *user, float *err_k, float *err_v, char *err, size_t errlen);

/* n_ctx must be resolved (non-zero). */
vkmix_error vkm_calib_allocate(const vkm_hparams *hp, const vkmix_calib_alloc_params *p, uint8_t *k_bits,
                               uint8_t *v_bits, vkmix_kv_memory *mem, double *objective, char *err, size_t errlen);

/* Exhaustive search over every width combination (tests compare the dynamic
 * program with it): the smallest objective whose cost fits, or +inf. Only for
 * tiny problems: VKM_CALIB_N_CHOICES^(items) combinations. */
double vkm_calib_exhaustive(const vkm_hparams *hp, const vkmix_calib_alloc_params *p, uint8_t *k_bits,
                            uint8_t *v_bits);

#endif

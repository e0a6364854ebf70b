/* fp32 copies of a loaded model's weights for the CPU reference. */
#ifndef VKM_REF_FROM_MODEL_H
#define VKM_REF_FROM_MODEL_H

#include "model/model.h"
#include "ref/ref_model.h"

/* fp32 copies of every weight, for the CPU reference (tests, calibration). */
typedef struct vkm_ref_model {
    vkm_ref_weights w;
    vkm_ref_layer *layers;
    float **owned;                /* every array allocated here */
    uint32_t n_owned;
} vkm_ref_model;
vkmix_error vkm_model_ref_weights(const vkmix_model *m, vkm_ref_model *out);
void vkm_ref_model_free(vkm_ref_model *r);

#endif

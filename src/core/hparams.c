/* RoPE frequencies from the hyper-parameters (see core/hparams.h). */
#include <math.h>

#include "core/hparams.h"

void vkm_rope_freqs(const vkm_hparams *hp, float *freqs)
{
    const uint32_t half = hp->head_dim / 2;
    for (uint32_t i = 0; i < half; i++) {
        float freq = powf(hp->rope_theta, -(float)(2 * i) / (float)hp->head_dim);
        if (hp->rope_scale_factor > 0.0f) {
            const float pi = 3.14159265358979323846f;
            float orig = (float)hp->rope_orig_ctx;
            float low_wavelen = orig / hp->rope_low_freq_factor;   /* longer waves are scaled */
            float high_wavelen = orig / hp->rope_high_freq_factor; /* shorter waves are kept */
            float wavelen = 2.0f * pi / freq;
            if (wavelen < high_wavelen) {
                /* kept */
            } else if (wavelen > low_wavelen) {
                freq = freq / hp->rope_scale_factor;
            } else {
                float smooth = (orig / wavelen - hp->rope_low_freq_factor) /
                               (hp->rope_high_freq_factor - hp->rope_low_freq_factor);
                freq = (1.0f - smooth) * freq / hp->rope_scale_factor + smooth * freq;
            }
        }
        freqs[i] = freq;
    }
}

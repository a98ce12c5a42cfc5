/* augment.c: training-time augmentation, fused with the uint8 -> float conversion of a batch.
 *
 * Why these transforms (issue 12): a PyTorch reference run on held-back real photos gained mostly from
 * horizontal flips, +-2 px shifts and 0.85-1.0 scale jitter (54% -> 65%), plus photometric jitter. The
 * training set's shoes all face left, photos face either way; photos are framed by our own preprocessing
 * (FashionCLFPhotos/Preprocess.swift), which centres the object and stretches its brightest pixel to 255, so
 * the residual mismatch is small misframing, size, tone curve, softness and sensor noise.
 *
 * Why this order:
 * - Geometry first, as one inverse-mapped bilinear warp (flip, scale about the centre, shift composed into a
 *   single map): one interpolation instead of three, so the image is resampled (and softened) only once. The
 *   map is axis-aligned (no rotation), so it factors into one table per axis and costs 4 loads per pixel.
 *   Outside the source is background (0), which is what a real photo's frame shows around the object.
 * - Blur before the tone curve: optical blur happens in linear light, before a camera's (or our
 *   preprocessing's) nonlinear mapping; it also runs on the clean warped image, not on noise.
 * - Gamma, then contrast, then peak normalisation: the tone curve changes the shape of the intensity
 *   distribution, the contrast gain dims the ink as a low-contrast photo does, and the optional peak
 *   normalisation then does what the photo preprocessing does at inference (brightest pixel to 1), so the
 *   network sees both dimmed and renormalised versions.
 * - Erasing then noise. The issue asks for erasing last; we fill with background, and the background after
 *   this pipeline is clamp(0 + noise), so the rectangle is set to 0 before the noise and then receives the
 *   same noise as every other pixel: identical to "erase last, fill with background-as-rendered", with no
 *   second set of draws. Why background and not random values (Zhong et al.'s default): an occluder or a
 *   part of the garment lost in a photo becomes background after our preprocessing (background subtraction
 *   clamps at 0), whereas uniform-noise patches are a texture the network never meets at test time. A clean
 *   0 rectangle in a noisy image would itself be such an artefact, hence the noise over it.
 * - Noise last, clamped: sensor noise sits on top of everything, and the network's input stays in [0, 1]
 *   as a real 8-bit image would.
 *
 * Randomness: SplitMix64's finaliser (Steele, Lea, Flood 2014) used as a counter-based generator: image key
 * k = mix(mix(seed) ^ position), draw j = mix(k + (j + 1) * golden). A pure function of (seed, position, j),
 * so there is no state to carry between batches or threads, and the output depends neither on the thread
 * count nor on the batch split. Each parameter has a fixed slot j, so enabling one transform does not
 * reshuffle the others, and the noise of pixel pair q uses slot NOISE_SLOT + q.
 *
 * Parameters are drawn with float expressions shared with the naive twin (augment_draw below): the discrete
 * choices (flip, shift, blur radius, erase rectangle) then agree exactly, and the twin can be compared
 * within float tolerance.
 *
 * Memory: per image O(h + w) floats, plus a plane of h*w when blurring, on the stack (VLAs; 28x28: under
 * 4 KB); nothing on the heap, so a training step stays allocation-free (the TrainStep benchmark counts 0
 * mallocs). Not fclf_thread_scratch: a caller may hold that buffer (for dst itself, say) across this call. */
#include "fclf_internal.h"

#include <math.h>
#include <stdlib.h>

#define GOLDEN 0x9E3779B97F4A7C15ull

enum {
    SLOT_FLIP,
    SLOT_DX,
    SLOT_DY,
    SLOT_SCALE,
    SLOT_BLUR,
    SLOT_GAMMA,
    SLOT_CONTRAST,
    SLOT_PEAK,
    SLOT_ERASE,
    SLOT_ERASE_AREA,
    SLOT_ERASE_ASPECT,
    SLOT_ERASE_X,
    SLOT_ERASE_Y,
    SLOT_PHOTOMETRIC,
    NOISE_SLOT = 16, /* room for more parameters before the per-pixel slots */
};

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline uint64_t draw(uint64_t key, uint64_t slot) { return mix64(key + (slot + 1) * GOLDEN); }
/* Uniform on [0, 1) with 24 bits: exact in float, so p < u comparisons are the same in float and double. */
static inline float unit24(uint64_t x) { return (float)(x >> 40) * 0x1p-24f; }
/* Uniform integer in [0, n), n < 2^32: Lemire's multiply-shift (bias < n / 2^32). */
static inline int64_t below(uint64_t x, uint64_t n) { return (int64_t)(((x >> 32) * n) >> 32); }

/* One image's parameters. */
typedef struct {
    uint64_t key;
    int flip, peak;
    int64_t dx, dy;
    float scale, sigma, gamma, contrast, noise_std;
    int64_t radius;
    int64_t ex, ey, ew, eh; /* erase rectangle; ew = eh = 0: none */
} augment_params;

/* Shared with the twin: the parameters of epoch position pos. Each identity setting yields the exact
 * identity value (u * 0 == 0), which the bit-exact all-off guarantee relies on. */
static augment_params augment_draw(const fclf_augment_config *c, uint64_t seed, uint64_t pos, int64_t h, int64_t w) {
    augment_params p = {0};
    p.key = mix64(mix64(seed) ^ pos);
    const uint64_t k = p.key;
    p.flip = unit24(draw(k, SLOT_FLIP)) < c->flip_p;
    const int64_t m = c->max_shift > 0 ? c->max_shift : 0;
    p.dx = below(draw(k, SLOT_DX), (uint64_t)(2 * m + 1)) - m;
    p.dy = below(draw(k, SLOT_DY), (uint64_t)(2 * m + 1)) - m;
    p.scale = c->scale_min + unit24(draw(k, SLOT_SCALE)) * (c->scale_max - c->scale_min);
    p.sigma = c->blur_sigma_max > 0 ? c->blur_sigma_max * unit24(draw(k, SLOT_BLUR)) : 0.0f;
    /* ceil(3 sigma) taps hold all but 0.3% of the mass; capped at the image size, past which taps only
     * ever read background (the cap is part of the definition, so both twins normalise the same taps). */
    if (p.sigma > 0) p.radius = (int64_t)fminf(ceilf(3.0f * p.sigma), (float)fclf_max64(h, w));
    /* Log-uniform: darkening (g > 1) and brightening (g < 1) by the same factor are equally likely. */
    p.gamma = c->gamma_min == c->gamma_max
                  ? c->gamma_min
                  : expf(logf(c->gamma_min) +
                         unit24(draw(k, SLOT_GAMMA)) * (logf(c->gamma_max) - logf(c->gamma_min)));
    p.contrast = c->contrast_min + unit24(draw(k, SLOT_CONTRAST)) * (c->contrast_max - c->contrast_min);
    p.peak = unit24(draw(k, SLOT_PEAK)) < c->peak_p;
    p.noise_std = c->noise_std;
    /* An image left out of the photometric jitter keeps its drawn parameters' slots (so the other
     * transforms draw the same) but takes the identity values: clean tone, no blur, no noise. */
    if (!(unit24(draw(k, SLOT_PHOTOMETRIC)) < c->photometric_p)) {
        p.sigma = 0.0f;
        p.radius = 0;
        p.gamma = 1.0f;
        p.contrast = 1.0f;
        p.peak = 0;
        p.noise_std = 0.0f;
    }
    if (unit24(draw(k, SLOT_ERASE)) < c->erase_p) {
        const float area = (float)(h * w) * (c->erase_area_min + unit24(draw(k, SLOT_ERASE_AREA)) *
                                                                     (c->erase_area_max - c->erase_area_min));
        /* Log-uniform aspect (height / width) in [a, 1/a]: tall and wide equally likely. */
        const float aspect = expf(logf(c->erase_aspect_min) * (1.0f - 2.0f * unit24(draw(k, SLOT_ERASE_ASPECT))));
        /* Height from area and aspect, then the width that keeps the area: when the height is cut to fit the
         * image, the width grows instead of the area shrinking (torchvision redraws up to 10 times; a fixed
         * number of draws keeps every slot's meaning). */
        p.eh = (int64_t)floorf(fminf(sqrtf(area * aspect), (float)h) + 0.5f);
        p.ew = p.eh > 0 ? (int64_t)floorf(fminf(area / (float)p.eh, (float)w) + 0.5f) : 0;
        if (p.ew == 0) p.eh = 0;
        p.ey = below(draw(k, SLOT_ERASE_Y), (uint64_t)(h - p.eh + 1));
        p.ex = below(draw(k, SLOT_ERASE_X), (uint64_t)(w - p.ew + 1));
    }
    return p;
}

/* Two standard normals from one draw (Box-Muller): pixels 2q and 2q + 1 share pair q's draw. */
static inline void normal_pair(uint64_t x, float *z0, float *z1) {
    const float u1 = (float)((x >> 40) + 1) * 0x1p-24f; /* (0, 1]: log never sees 0 */
    const float u2 = (float)((x >> 16) & 0xFFFFFF) * 0x1p-24f;
    const float r = sqrtf(-2.0f * logf(u1)), t = 6.28318530717958647692f * u2;
    *z0 = r * cosf(t);
    *z1 = r * sinf(t);
}

/* The bilinear taps of one axis: output coordinate q samples source coordinate
 * c +- (q - shift - c) / scale (minus when flipped), c the centre. A tap outside [0, size) keeps a valid
 * index with weight 0, so the inner loop needs no bounds test. With scale 1 and an integer shift the
 * weights are exactly 1 and 0, so the warp copies. */
static void axis_taps(int64_t *ia, int64_t *ib, float *wa, float *wb, int64_t size, int64_t shift, float scale,
                      int flip) {
    const float centre = (float)(size - 1) * 0.5f;
    for (int64_t q = 0; q < size; q++) {
        const float v = ((float)q - (float)shift - centre) / scale;
        const float u = flip ? centre - v : centre + v;
        ia[q] = ib[q] = 0;
        wa[q] = wb[q] = 0.0f;
        if (!(u > -1.0f && u < (float)size)) continue; /* also NaN: nothing to sample */
        const float f = floorf(u);
        const int64_t i = (int64_t)f;
        const float t = u - f;
        if (i >= 0) { ia[q] = i; wa[q] = 1.0f - t; }
        if (i + 1 < size) { ib[q] = i + 1; wb[q] = t; }
    }
}

/* One image into out [h*w]. */
static void augment_one(float *out, const uint8_t *img, int64_t h, int64_t w, const fclf_augment_config *c,
                        const augment_params *p) {
    const int64_t hw = h * w;
    /* 1. Warp, in uint8 units (exact for a copy), scaled to [0, 1] at the end of each pixel. */
    int64_t xa[w], xb[w], ya[h], yb[h];
    float wxa[w], wxb[w], wya[h], wyb[h];
    axis_taps(xa, xb, wxa, wxb, w, p->dx, p->scale, p->flip);
    axis_taps(ya, yb, wya, wyb, h, p->dy, p->scale, 0);
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *ra = img + ya[y] * w, *rb = img + yb[y] * w;
        const float ta = wya[y], tb = wyb[y];
        float *o = out + y * w;
        for (int64_t x = 0; x < w; x++) {
            const float top = wxa[x] * (float)ra[xa[x]] + wxb[x] * (float)ra[xb[x]];
            const float bottom = wxa[x] * (float)rb[xa[x]] + wxb[x] * (float)rb[xb[x]];
            o[x] = (ta * top + tb * bottom) * (1.0f / 255.0f);
        }
    }
    /* 2. Blur: rows into tmp through a zero-padded line, then columns back into out as whole rows. */
    if (p->radius > 0) {
        const int64_t r = p->radius;
        float g[2 * r + 1], line[w + 2 * r], tmp[hw];
        float sum = 0.0f;
        for (int64_t k = -r; k <= r; k++) sum += g[k + r] = expf(-(float)(k * k) / (2.0f * p->sigma * p->sigma));
        for (int64_t k = 0; k <= 2 * r; k++) g[k] /= sum;
        for (int64_t k = 0; k < r; k++) line[k] = line[w + r + k] = 0.0f;
        for (int64_t y = 0; y < h; y++) {
            for (int64_t x = 0; x < w; x++) line[r + x] = out[y * w + x];
            float *t = tmp + y * w;
            for (int64_t x = 0; x < w; x++) t[x] = 0.0f;
            for (int64_t k = 0; k <= 2 * r; k++)
                for (int64_t x = 0; x < w; x++) t[x] += g[k] * line[x + k];
        }
        for (int64_t y = 0; y < h; y++) {
            float *o = out + y * w;
            for (int64_t x = 0; x < w; x++) o[x] = 0.0f;
            for (int64_t k = fclf_max64(-r, -y); k <= fclf_min64(r, h - 1 - y); k++) {
                const float gk = g[k + r], *t = tmp + (y + k) * w;
                for (int64_t x = 0; x < w; x++) o[x] += gk * t[x];
            }
        }
    }
    /* 3-5. Tone: gamma (0 stays 0: most pixels are background, skip them), contrast, peak. */
    if (p->gamma != 1.0f)
        for (int64_t i = 0; i < hw; i++)
            if (out[i] > 0.0f) out[i] = powf(out[i], p->gamma);
    if (p->contrast != 1.0f)
        for (int64_t i = 0; i < hw; i++) out[i] *= p->contrast;
    if (p->peak) {
        float peak = 0.0f;
        for (int64_t i = 0; i < hw; i++) peak = out[i] > peak ? out[i] : peak;
        if (peak > 0.0f)
            for (int64_t i = 0; i < hw; i++) out[i] /= peak;
    }
    /* 6. Erase to background. */
    for (int64_t y = p->ey; y < p->ey + p->eh; y++)
        for (int64_t x = p->ex; x < p->ex + p->ew; x++) out[y * w + x] = 0.0f;
    /* 7. Noise, then the clamp that also bounds a contrast gain > 1. */
    if (p->noise_std > 0.0f) {
        for (int64_t i = 0; i < hw; i += 2) {
            float z0, z1;
            normal_pair(draw(p->key, NOISE_SLOT + (uint64_t)(i / 2)), &z0, &z1);
            out[i] += p->noise_std * z0;
            if (i + 1 < hw) out[i + 1] += p->noise_std * z1;
        }
    }
    for (int64_t i = 0; i < hw; i++) out[i] = fminf(fmaxf(out[i], 0.0f), 1.0f);
}

fclf_augment_config fclf_augment_identity(void) {
    fclf_augment_config c = {0};
    c.scale_min = c.scale_max = 1.0f;
    c.gamma_min = c.gamma_max = 1.0f;
    c.contrast_min = c.contrast_max = 1.0f;
    c.erase_aspect_min = 1.0f;
    c.photometric_p = 1.0f; /* the tone, blur and noise settings alone say whether they apply */
    return c;
}

void fclf_augment_batch(float *dst, const uint8_t *src, const int32_t *src_index, int64_t n, int64_t h, int64_t w,
                        const fclf_augment_config *cfg, uint64_t seed, uint64_t first) {
    if (n <= 0 || h <= 0 || w <= 0) return;
    /* Rough flops per pixel: warp ~10, blur 4 per tap of the widest kernel, powf and the noise's
     * log/sqrt/sin/cos ~40 each. At batch 32 with everything on this is ~3 MFLOP: parallel. */
    const double taps = cfg->blur_sigma_max > 0 ? 2.0 * ceil(3.0 * cfg->blur_sigma_max) + 1.0 : 0.0;
    const double per_pixel = 10.0 + 4.0 * taps + (cfg->gamma_min != 1.0f || cfg->gamma_max != 1.0f ? 40.0 : 0.0) +
                             (cfg->noise_std > 0 ? 40.0 : 0.0);
    const int64_t hw = h * w;
    FCLF_PARALLEL_IF((double)(n * hw) * per_pixel >= FCLF_PAR_MIN_WORK, {
        for (FCLF_STATIC_RANGE(i, n)) {
            const augment_params p = augment_draw(cfg, seed, first + (uint64_t)i, h, w);
            augment_one(dst + i * hw, src + (int64_t)src_index[i] * hw, h, w, cfg, &p);
        }
    });
}

/* ---- naive twin (tests only): every output pixel of the warp and the blur evaluated on its own, in double ---- */

/* The warped value at (x, y), from the map written out per pixel: flip, scale about the centre, shift. */
static double warp_ref(const uint8_t *img, int64_t h, int64_t w, const augment_params *p, int64_t x, int64_t y) {
    const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
    double sx = cx + ((double)x - (double)p->dx - cx) / (double)p->scale;
    const double sy = cy + ((double)y - (double)p->dy - cy) / (double)p->scale;
    if (p->flip) sx = (w - 1) - sx;
    const double fx = floor(sx), fy = floor(sy);
    double v = 0.0;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            const double xi = fx + i, yj = fy + j;
            if (xi < 0 || xi >= w || yj < 0 || yj >= h) continue;
            const double wgt = (i ? sx - fx : 1.0 - (sx - fx)) * (j ? sy - fy : 1.0 - (sy - fy));
            v += wgt * img[(int64_t)yj * w + (int64_t)xi] / 255.0;
        }
    return v;
}

void fclf_augment_batch_ref(float *dst, const uint8_t *src, const int32_t *src_index, int64_t n, int64_t h,
                            int64_t w, const fclf_augment_config *cfg, uint64_t seed, uint64_t first) {
    const int64_t hw = h * w;
    double *warped = malloc(sizeof(double) * (size_t)hw), *v = malloc(sizeof(double) * (size_t)hw);
    if (!warped || !v) abort();
    for (int64_t i = 0; i < n; i++) {
        const augment_params p = augment_draw(cfg, seed, first + (uint64_t)i, h, w);
        const uint8_t *img = src + (int64_t)src_index[i] * hw;
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) warped[y * w + x] = warp_ref(img, h, w, &p, x, y);
        /* The 2-D Gaussian as a double sum over the (2r+1)^2 window, zero outside the image. */
        const int64_t r = p.radius;
        double norm = 0.0;
        for (int64_t k = -r; k <= r; k++) norm += exp(-(double)(k * k) / (2.0 * p.sigma * p.sigma));
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                if (r == 0) { v[y * w + x] = warped[y * w + x]; continue; }
                double s = 0.0;
                for (int64_t j = -r; j <= r; j++)
                    for (int64_t k = -r; k <= r; k++) {
                        if (y + j < 0 || y + j >= h || x + k < 0 || x + k >= w) continue;
                        s += exp(-(double)(j * j + k * k) / (2.0 * p.sigma * p.sigma)) / (norm * norm) *
                             warped[(y + j) * w + x + k];
                    }
                v[y * w + x] = s;
            }
        double peak = 0.0;
        for (int64_t q = 0; q < hw; q++) {
            v[q] = pow(v[q], p.gamma) * p.contrast;
            if (v[q] > peak) peak = v[q];
        }
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                const int64_t q = y * w + x;
                if (p.peak && peak > 0) v[q] /= peak;
                if (x >= p.ex && x < p.ex + p.ew && y >= p.ey && y < p.ey + p.eh) v[q] = 0.0;
                if (p.noise_std > 0) {
                    const uint64_t d = draw(p.key, NOISE_SLOT + (uint64_t)(q / 2));
                    const double u1 = (double)((d >> 40) + 1) / 16777216.0, u2 = (double)((d >> 16) & 0xFFFFFF) / 16777216.0;
                    const double rad = sqrt(-2.0 * log(u1)), t = 2.0 * 3.14159265358979323846 * u2;
                    v[q] += p.noise_std * (q % 2 == 0 ? rad * cos(t) : rad * sin(t));
                }
                dst[i * hw + q] = (float)fmin(fmax(v[q], 0.0), 1.0);
            }
    }
    free(warped);
    free(v);
}

/* dtype.c — element types of checkpoint tensors and their conversions to fp32. */
#include <string.h>

#include "specscope.h"

size_t ss_dtype_size(ss_dtype dtype) { return dtype == SS_F32 ? 4 : 2; }

const char *ss_dtype_name(ss_dtype dtype) {
    switch (dtype) {
    case SS_F32: return "F32";
    case SS_F16: return "F16";
    case SS_BF16: return "BF16";
    }
    return "?";
}

float ss_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t ss_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

/* IEEE half -> float, subnormals and infinities included. */
float ss_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400u)) {
                mant <<= 1;
                exp--;
            }
            u = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float ss_element_f32(ss_dtype dtype, const void *p) {
    uint16_t h;
    float f;
    switch (dtype) {
    case SS_F16: memcpy(&h, p, 2); return ss_f16_to_f32(h);
    case SS_BF16: memcpy(&h, p, 2); return ss_bf16_to_f32(h);
    case SS_F32: break;
    }
    memcpy(&f, p, 4);
    return f;
}

/* kernels: matmul, norms, activations, softmax, rope, sinusoidal positions.
 * See kernels.h for the shapes and the determinism rule. */
#include "kernels.h"

#include <math.h>

float kern_dot(const float *restrict a, const float *restrict b, int n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float tail = 0.0f;
    for (; i < n; i++) tail += a[i] * b[i];
    float s0 = acc[0] + acc[4], s1 = acc[1] + acc[5], s2 = acc[2] + acc[6], s3 = acc[3] + acc[7];
    return ((s0 + s2) + (s1 + s3)) + tail;
}

void kern_axpy(float *restrict y, float a, const float *restrict x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* Rows of inp are taken TILE at a time so that a weight row is reused from
 * cache; each output element is still one kern_dot (+ bias), so the result
 * does not depend on the tiling. */
#define LINEAR_TILE 8

void kern_linear(float *restrict out, const float *restrict inp, const float *restrict weight,
                 const float *restrict bias, int T, int C, int OC) {
    for (int t0 = 0; t0 < T; t0 += LINEAR_TILE) {
        int t1 = t0 + LINEAR_TILE < T ? t0 + LINEAR_TILE : T;
        for (int o = 0; o < OC; o++) {
            const float *w = weight + (size_t)o * C;
            float b = bias ? bias[o] : 0.0f;
            for (int t = t0; t < t1; t++)
                out[(size_t)t * OC + o] = kern_dot(inp + (size_t)t * C, w, C) + b;
        }
    }
}

void kern_layernorm(float *out, const float *inp, const float *weight, const float *bias, int T,
                    int C, double eps) {
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        double mean = 0.0;
        for (int i = 0; i < C; i++) mean += x[i];
        mean /= C;
        double var = 0.0;
        for (int i = 0; i < C; i++) {
            double d = x[i] - mean;
            var += d * d;
        }
        var /= C;
        double rstd = 1.0 / sqrt(var + eps);
        for (int i = 0; i < C; i++) {
            double v = (x[i] - mean) * rstd * weight[i];
            if (bias) v += bias[i];
            y[i] = (float)v;
        }
    }
}

void kern_rmsnorm(float *out, const float *inp, const float *weight, int T, int C, double eps) {
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * C;
        float *y = out + (size_t)t * C;
        double ss = 0.0;
        for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
        double r = 1.0 / sqrt(ss / C + eps);
        for (int i = 0; i < C; i++) y[i] = (float)(x[i] * r * weight[i]);
    }
}

void kern_relu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void kern_gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = (float)(0.5 * v * (1.0 + erf(v * M_SQRT1_2)));
    }
}

void kern_gelu_tanh(float *x, size_t n) {
    const double k = sqrt(2.0 / M_PI);
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = (float)(0.5 * v * (1.0 + tanh(k * (v + 0.044715 * v * v * v))));
    }
}

void kern_silu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        x[i] = (float)(v / (1.0 + exp(-v)));
    }
}

void kern_mul(float *restrict out, const float *restrict b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] *= b[i];
}

void kern_softmax(float *row, int n_valid, int n) {
    float mx = row[0];
    for (int i = 1; i < n_valid; i++) mx = row[i] > mx ? row[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n_valid; i++) {
        float e = expf(row[i] - mx);
        row[i] = e;
        sum += e;
    }
    double inv = 1.0 / sum;
    for (int i = 0; i < n_valid; i++) row[i] = (float)(row[i] * inv);
    for (int i = n_valid; i < n; i++) row[i] = 0.0f;
}

void kern_rope_table(float *cosv, float *sinv, int pos, int hd, double theta) {
    for (int i = 0; i < hd / 2; i++) {
        double freq = pow(theta, -(double)(2 * i) / hd);
        double a = pos * freq;
        cosv[i] = (float)cos(a);
        sinv[i] = (float)sin(a);
    }
}

void kern_rope_apply(float *vec, const float *cosv, const float *sinv, int hd) {
    for (int i = 0; i < hd / 2; i++) {
        float x0 = vec[2 * i], x1 = vec[2 * i + 1];
        vec[2 * i] = x0 * cosv[i] - x1 * sinv[i];
        vec[2 * i + 1] = x0 * sinv[i] + x1 * cosv[i];
    }
}

void kern_sinusoidal(float *out, int pos, int D) {
    for (int i = 0; i < D; i += 2) {
        double a = pos / pow(10000.0, (double)i / D);
        out[i] = (float)sin(a);
        if (i + 1 < D) out[i + 1] = (float)cos(a);
    }
}

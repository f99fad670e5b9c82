/* flash_isa.h: the body of compute/flash.c for one instruction set. flash.c
 * includes it once per set, after defining:
 *
 *   FL_ISA(x)    the name x with the set's suffix (x##_avx512)
 *   FL_FN        static inline always_inline, with the set's target
 *   FL_API       static, with the set's target (the entry points)
 *   FL_W         floats in a vector: 16, 8, or 1 (the baseline's scalars)
 *   FL_SV        vectors of keys a score block keeps (rows x FL_SV accumulators)
 *   FL_DV        vectors of dimensions a weighted-sum block keeps
 *   vf           the vector type
 *   FL_ZERO() FL_SET1(x) FL_LOAD(p) FL_STORE(p, x)
 *   FL_LOADN(p, n) FL_STOREN(p, x, n)   the first n (< FL_W) lanes only,
 *                                        the rest of memory untouched
 *                                        (loaded as 0)
 *   fl_mask, FL_MASK(n), FL_LOADM(p, m)  the same with the mask of the
 *                                        first n lanes (n <= 0: none, n >=
 *                                        FL_W: all) made once
 *   FL_ADD FL_SUB FL_MUL FL_DIV          element-wise IEEE operations
 *   FL_FMA(a, b, c)                      a * b + c, rounded once
 *   FL_MAX(a, b), FL_MIN(a, b)           a > b ? a : b, a < b ? a : b
 *   FL_SCALE_2N(y, t)                    y 2^n, n = t's bits - 0x4B400000
 *                                        (exp_scaled's scale_2n)
 *   FL_EXP(x)                            fl_exp1 on every element: the
 *                                        vector exp below, or FL_SCALAR
 *                                        and fl_exp1 itself
 *
 * and undefines them at its end. The order of operations is flash.c's
 * (and kernels.h's): every element is one chain of IEEE operations whatever
 * FL_W, so every set gives the same bytes. */

#if !defined(FL_SCALAR)
/* kern_exp on a vector: exp_scaled's operations (kern_inline.h) one for
 * one. max(lo, x) is lo > x ? lo : x and min(hi, x) hi < x ? hi : x: the
 * bit selects of the scalar code, NaN passing through. */
FL_FN vf FL_ISA(exp)(vf x) {
    x = FL_MAX(FL_SET1(KEXP_LO), x);
    x = FL_MIN(FL_SET1(KEXP_HI), x);
    const vf sh = FL_SET1(KEXP_SHIFT);
    const vf t = FL_ADD(FL_MUL(x, FL_SET1(KEXP_LOG2E)), sh);
    const vf kf = FL_SUB(t, sh);
    vf r = FL_SUB(x, FL_MUL(kf, FL_SET1(KEXP_LN2_HI)));
    r = FL_SUB(r, FL_MUL(kf, FL_SET1(KEXP_LN2_LO)));
    vf p = FL_SET1(KEXP_P0);
    p = FL_ADD(FL_MUL(p, r), FL_SET1(KEXP_P1));
    p = FL_ADD(FL_MUL(p, r), FL_SET1(KEXP_P2));
    p = FL_ADD(FL_MUL(p, r), FL_SET1(KEXP_P3));
    p = FL_ADD(FL_MUL(p, r), FL_SET1(KEXP_P4));
    p = FL_ADD(FL_MUL(p, r), FL_SET1(KEXP_P5));
    const vf y = FL_ADD(FL_ADD(FL_MUL(p, FL_MUL(r, r)), r), FL_SET1(1.0f));
    return FL_SCALE_2N(y, t);
}
#endif

/* s[r][c] = chain(q_r, key j0 + c) * scale for rows r < RB of q (RB, hd)
 * and the keys c < nc of kt [hd, ldk], FL_SV vectors of keys at a time;
 * s[r][c] for nc <= c < the block's round-up is left as garbage. Keys past
 * nc are never read. */
FL_FN void FL_ISA(scores)(float s[][FL_KEYS], const float *restrict q, const int RB, int hd,
                          const float *restrict kt, size_t ldk, int j0, int nc, float scale) {
    const vf sc = FL_SET1(scale);
    for (int c0 = 0; c0 < nc; c0 += FL_SV * FL_W) {
        const int left = nc - c0;
        const float *restrict k = kt + j0 + c0;
        vf acc[FL_RB][FL_SV];
        for (int r = 0; r < RB; r++)
            for (int u = 0; u < FL_SV; u++) acc[r][u] = FL_ZERO();
        if (left >= FL_SV * FL_W) {
            for (int i = 0; i < hd; i++) {
                vf kv[FL_SV];
                for (int u = 0; u < FL_SV; u++) kv[u] = FL_LOAD(k + (size_t)i * ldk + u * FL_W);
                for (int r = 0; r < RB; r++) {
                    const vf qb = FL_SET1(q[(size_t)r * hd + i]);
                    for (int u = 0; u < FL_SV; u++) acc[r][u] = FL_FMA(qb, kv[u], acc[r][u]);
                }
            }
        } else { /* the last keys: masked loads (the masks outside the loop) */
            fl_mask mk[FL_SV];
            for (int u = 0; u < FL_SV; u++) mk[u] = FL_MASK(left - u * FL_W);
            for (int i = 0; i < hd; i++) {
                vf kv[FL_SV];
                for (int u = 0; u < FL_SV; u++)
                    kv[u] = FL_LOADM(k + (size_t)i * ldk + u * FL_W, mk[u]);
                for (int r = 0; r < RB; r++) {
                    const vf qb = FL_SET1(q[(size_t)r * hd + i]);
                    for (int u = 0; u < FL_SV; u++) acc[r][u] = FL_FMA(qb, kv[u], acc[r][u]);
                }
            }
        }
        for (int r = 0; r < RB; r++)
            for (int u = 0; u < FL_SV; u++) FL_STORE(&s[r][c0 + u * FL_W], FL_MUL(acc[r][u], sc));
    }
}

/* The largest of x[0 .. n16-1] (n16 a multiple of 16), x > m ? x : m from
 * m = x[0] in every lane, then over the lanes in order: max is exact, so
 * only a NaN at x[0] (which stays) could tell the orders apart. */
FL_FN float FL_ISA(row_max)(const float *restrict x, int n16) {
    vf m = FL_SET1(x[0]);
    for (int c = 0; c < n16; c += FL_W) m = FL_MAX(FL_LOAD(x + c), m);
    float lane[FL_W];
    FL_STORE(lane, m);
    float mt = lane[0];
    for (int u = 1; u < FL_W; u++) mt = lane[u] > mt ? lane[u] : mt;
    return mt;
}

/* x[c] = fl_exp1(x[c] - mx) for c < n16, then the sum of x[0 .. n16-1] in
 * 16 lanes (c in lane c % 16, in order, from +0) added in tree16. */
FL_FN float FL_ISA(row_exp_sum)(float *restrict x, int n, int n16, float mx) {
    const vf mv = FL_SET1(mx);
    for (int c = 0; c < n16; c += FL_W) FL_STORE(x + c, FL_EXP(FL_SUB(FL_LOAD(x + c), mv)));
    for (int c = n; c < n16; c++) x[c] = 0.0f; /* + 0 changes no lane: they never hold -0 */
    vf acc[16 / FL_W];
    for (int u = 0; u < 16 / FL_W; u++) acc[u] = FL_ZERO();
    for (int c = 0; c < n16; c += 16)
        for (int u = 0; u < 16 / FL_W; u++) acc[u] = FL_ADD(acc[u], FL_LOAD(x + c + u * FL_W));
    float lane[16];
    for (int u = 0; u < 16 / FL_W; u++) FL_STORE(lane + u * FL_W, acc[u]);
    return fl_tree16(lane);
}

/* o[r][d] = first ? tv : fma(o[r][d], alpha[r], tv), tv the chain over the
 * keys c < nc (c < ncr[r] when ncr is given: row r's own count) of
 * fma(p[r][c], v[c][d], tv) from +0, for rows r < RB of o (rows ldo apart)
 * and every d < hd; v (nc, hd) is the tile's values as rows. Neither
 * memory past a row's hd nor values past its count are touched. */
FL_FN void FL_ISA(pv)(float *restrict o, size_t ldo, float p[][FL_KEYS],
                      const float *restrict alpha, bool first, const int RB,
                      const float *restrict v, int hd, int nc, const int *ncr) {
    for (int d0 = 0; d0 < hd; d0 += FL_DV * FL_W) {
        const int left = hd - d0;
        const bool whole = left >= FL_DV * FL_W;
        vf acc[FL_RB][FL_DV];
        for (int r = 0; r < RB; r++)
            for (int u = 0; u < FL_DV; u++) acc[r][u] = FL_ZERO();
        if (whole) {
            for (int c = 0; c < nc; c++) {
                const float *restrict vc = v + (size_t)c * hd + d0;
                vf x[FL_DV];
                for (int u = 0; u < FL_DV; u++) x[u] = FL_LOAD(vc + u * FL_W);
                for (int r = 0; r < RB; r++) {
                    if (ncr && c >= ncr[r]) continue; /* a key row r does not see */
                    const vf pb = FL_SET1(p[r][c]);
                    for (int u = 0; u < FL_DV; u++) acc[r][u] = FL_FMA(pb, x[u], acc[r][u]);
                }
            }
        } else { /* the last dimensions: masked loads */
            fl_mask mk[FL_DV];
            for (int u = 0; u < FL_DV; u++) mk[u] = FL_MASK(left - u * FL_W);
            for (int c = 0; c < nc; c++) {
                const float *restrict vc = v + (size_t)c * hd + d0;
                vf x[FL_DV];
                for (int u = 0; u < FL_DV; u++) x[u] = FL_LOADM(vc + u * FL_W, mk[u]);
                for (int r = 0; r < RB; r++) {
                    if (ncr && c >= ncr[r]) continue;
                    const vf pb = FL_SET1(p[r][c]);
                    for (int u = 0; u < FL_DV; u++) acc[r][u] = FL_FMA(pb, x[u], acc[r][u]);
                }
            }
        }
        for (int r = 0; r < RB; r++) {
            float *restrict dst = o + (size_t)r * ldo + d0;
            const vf al = FL_SET1(alpha[r]);
            for (int u = 0; u < FL_DV; u++) {
                const int m = left - u * FL_W;
                if (!whole && m <= 0) break;
                if (whole || m >= FL_W) {
                    FL_STORE(dst + u * FL_W,
                             first ? acc[r][u] : FL_FMA(FL_LOAD(dst + u * FL_W), al, acc[r][u]));
                } else {
                    FL_STOREN(dst + u * FL_W,
                              first ? acc[r][u]
                                    : FL_FMA(FL_LOADN(dst + u * FL_W, m), al, acc[r][u]),
                              m);
                }
            }
        }
    }
}

/* One register block: rows r < RB of a query tile against the key tile at
 * j0, each row seeing nc keys of it, or (ncr given: the causal diagonal)
 * its own ncr[r] >= 1 of them, nc the largest; m, l the rows' running max
 * and sum; sout (rows lds apart) gets each row's scores when not NULL. */
FL_FN void FL_ISA(block)(float *restrict o, size_t ldo, float *restrict sout, size_t lds,
                         const float *restrict q, float *restrict m, float *restrict l,
                         const int RB, const float *restrict kt, size_t ldk,
                         const float *restrict v, int hd, int j0, int nc, const int *ncr,
                         float scale) {
    float s[FL_RB][FL_KEYS] FL_ALIGNED, alpha[FL_RB];
    const bool first = j0 == 0;
    FL_ISA(scores)(s, q, RB, hd, kt, ldk, j0, nc, scale);
    for (int r = 0; r < RB; r++) {
        const int n = ncr ? ncr[r] : nc, n16 = (n + 15) & ~15;
        if (sout) memcpy(sout + (size_t)r * lds + j0, s[r], (size_t)n * sizeof(float));
        for (int c = n; c < n16; c++) s[r][c] = s[r][0]; /* changes no maximum */
        const float mt = FL_ISA(row_max)(s[r], n16);
        const float mnew = first || mt > m[r] ? mt : m[r];
        alpha[r] = first ? 0.0f : fl_exp1(m[r] - mnew);
        m[r] = mnew;
        const float ts = FL_ISA(row_exp_sum)(s[r], n, n16, mnew);
        l[r] = first ? ts : fmaf(l[r], alpha[r], ts);
    }
    FL_ISA(pv)(o, ldo, s, alpha, first, RB, v + (size_t)j0 * hd, hd, nc, ncr);
}

/* The blocks of 1 .. FL_RB rows, with or without per-row counts, each
 * inlined with its sizes as constants. */
FL_FN void FL_ISA(block_n)(float *restrict o, size_t ldo, float *restrict sout, size_t lds,
                           const float *restrict q, float *m, float *l, int rb,
                           const float *restrict kt, size_t ldk, const float *restrict v, int hd,
                           int j0, int nc, const int *ncr, float scale) {
#define FL_CASE(R, N)                                                                             \
    FL_ISA(block)(o, ldo, sout, lds, q, m, l, R, kt, ldk, v, hd, j0, nc, N, scale)
    if (ncr) {
        switch (rb) {
        case 4: FL_CASE(4, ncr); break;
        case 3: FL_CASE(3, ncr); break;
        case 2: FL_CASE(2, ncr); break;
        default: FL_CASE(1, ncr); break;
        }
    } else {
        switch (rb) {
        case 4: FL_CASE(4, NULL); break;
        case 3: FL_CASE(3, NULL); break;
        case 2: FL_CASE(2, NULL); break;
        default: FL_CASE(1, NULL); break;
        }
    }
#undef FL_CASE
}

/* kern_flash (kernels.h) for this set. */
FL_API void FL_ISA(flash)(float *restrict ctx, size_t ldc, float *restrict sout, size_t lds,
                          const float *restrict q, int n, int vis0, bool causal,
                          const float *restrict kt, size_t ldk, const float *restrict v, int hd,
                          float scale) {
    float m[KERN_FLASH_ROWS], l[KERN_FLASH_ROWS];
    /* row r sees keys 0 .. FL_SEEN(r) - 1 */
#define FL_SEEN(r) (causal ? vis0 + (r) : vis0)
    const int last = FL_SEEN(n - 1);
    for (int j0 = 0; j0 < last; j0 += FL_KEYS) {
        for (int r0 = 0; r0 < n; r0 += FL_RB) {
            const int rb = n - r0 < FL_RB ? n - r0 : FL_RB;
            float *so = sout ? sout + (size_t)r0 * lds : NULL;
            /* the keys of the tile that rows r0 .. r0+rb-1 see: the same
             * count for all (one block), or, on the causal diagonal, a
             * count per row (one block of the rows that see any) */
            int lo = FL_SEEN(r0) - j0, hi = FL_SEEN(r0 + rb - 1) - j0;
            lo = lo < FL_KEYS ? lo : FL_KEYS;
            hi = hi < FL_KEYS ? hi : FL_KEYS;
            if (lo == hi) {
                if (lo > 0) /* a tile no row sees is skipped */
                    FL_ISA(block_n)(ctx + (size_t)r0 * ldc, ldc, so, lds, q + (size_t)r0 * hd,
                                    m + r0, l + r0, rb, kt, ldk, v, hd, j0, lo, NULL, scale);
                continue;
            }
            int ncr[FL_RB], r1 = r0; /* counts grow with the row: skip those of 0 */
            while (r1 < r0 + rb && FL_SEEN(r1) - j0 <= 0) r1++;
            if (r1 == r0 + rb) continue; /* a tile no row sees */
            for (int r = r1; r < r0 + rb; r++) {
                const int nc = FL_SEEN(r) - j0;
                ncr[r - r1] = nc < FL_KEYS ? nc : FL_KEYS;
            }
            FL_ISA(block_n)(ctx + (size_t)r1 * ldc, ldc, so ? so + (size_t)(r1 - r0) * lds : NULL,
                            lds, q + (size_t)r1 * hd, m + r1, l + r1, r0 + rb - r1, kt, ldk, v,
                            hd, j0, hi, ncr, scale);
        }
    }
    for (int r = 0; r < n; r++) {
        float *restrict o = ctx + (size_t)r * ldc;
        if (FL_SEEN(r) <= 0) {
            for (int d = 0; d < hd; d++) o[d] = 0.0f;
            continue;
        }
        const vf lr = FL_SET1(l[r]);
        int d = 0;
        for (; d + FL_W <= hd; d += FL_W) FL_STORE(o + d, FL_DIV(FL_LOAD(o + d), lr));
        if (d < hd) FL_STOREN(o + d, FL_DIV(FL_LOADN(o + d, hd - d), lr), hd - d);
    }
#undef FL_SEEN
}

/* kern_scores (kernels.h) for this set: the score blocks of one row. */
FL_API void FL_ISA(scores_row)(float *restrict s, const float *restrict q,
                               const float *restrict kt, size_t ldk, int n, int hd, float scale) {
    float b[1][FL_KEYS] FL_ALIGNED;
    for (int j0 = 0; j0 < n; j0 += FL_KEYS) {
        const int nc = n - j0 < FL_KEYS ? n - j0 : FL_KEYS;
        FL_ISA(scores)(b, q, 1, hd, kt, ldk, j0, nc, scale);
        memcpy(s + j0, b[0], (size_t)nc * sizeof(float));
    }
}

/* the parameters, for the next set */
#undef FL_ISA
#undef FL_FN
#undef FL_API
#undef FL_W
#undef FL_SV
#undef FL_DV
#undef vf
#undef FL_ZERO
#undef FL_SET1
#undef FL_LOAD
#undef FL_STORE
#undef FL_LOADN
#undef FL_STOREN
#undef fl_mask
#undef FL_MASK
#undef FL_LOADM
#undef FL_ADD
#undef FL_SUB
#undef FL_MUL
#undef FL_DIV
#undef FL_FMA
#undef FL_MAX
#undef FL_MIN
#undef FL_SCALE_2N
#undef FL_EXP
#undef FL_SCALAR

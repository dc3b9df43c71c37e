// Fused CPU kernels for binary trees of labelled spans: inside (log-partition), outside (span
// marginals) and CKY (best tree), one sequence at a time, sequences in parallel (OpenMP).
// Plain C ABI over raw pointers; hybrid/structured/native.py builds it together with the
// other kernels, and hybrid/structured/tree.py holds the eager engine with the same semantics.
//
// Scores are (B, S, S, L), contiguous, with S = N + 1 fenceposts: scores[b, i, j, l] scores
// span [i, j) with label l, and only 0 <= i < j <= lengths[b] is read. A tree's score is the
// sum of its 2n - 1 labelled spans.
//
// Per-span charts are width-major: (B, S, S) indexed [w * S + i] for span [i, i + w). The left
// children [i, i + v) of all spans of width w are then row v, and their right children
// [i + v, i + w) row w - v from column v, so that each split v of a width is one pass over
// contiguous rows, vectorised over the start positions i: no horizontal reductions.
// Such passes run over whole blocks of kLanes starts, so that they compile to whole vector
// registers with no scalar remainder; the lanes past the last start compute values that are
// never stored (their flows are forced to 0), and the buffers are padded for them.
//
// The labels of the spans that start at one position are contiguous in the scores (count
// spans x L labels), so the passes over labels are flat vectorised maps over that block.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

template <typename F>
constexpr F neg_inf = -std::numeric_limits<F>::infinity();

constexpr int64_t kLanes = 16;

inline int64_t blocks_of(int64_t count) { return (count + kLanes - 1) / kLanes * kLanes; }

// exp(x) for x <= 0 in float (and the tiny positive x that rounding leaves; within 1e-7
// relative of exp, 0 below exp(-87)): Cody-Waite reduction and the Cephes polynomial, as in
// chain_kernels.cpp, but written without floor and branches (n = round(x / ln 2) by the
// 1.5 * 2^23 shift) so that GCC vectorises the loops that call it.
inline float exp_nonpositive(float x) {
    constexpr float shift = 12582912.0f;  // 1.5 * 2^23; its bits are 0x4B400000
    const float clamped = std::max(x, -87.0f);
    const float shifted = clamped * 1.44269504088896341f + shift;
    const float n = shifted - shift;
    const float r = clamped - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = (__builtin_bit_cast(int32_t, shifted) - 0x4B400000 + 127) << 23;
    return x < -87.0f ? 0.0f : p * __builtin_bit_cast(float, bits);
}

inline double exp_nonpositive(double x) { return std::exp(x); }

// log(x) for x >= 0 in float (-inf at 0; within 2e-7 relative of log for normal x): the
// Cephes polynomial on the mantissa, with the exponent split off by bit operations and no
// branches, so that GCC vectorises the loops that call it.
inline float log_nonnegative(float x) {
    const int32_t bits = __builtin_bit_cast(int32_t, x);
    float e = float((bits >> 23) - 126);
    float m = __builtin_bit_cast(float, (bits & 0x007FFFFF) | 0x3F000000);  // in [0.5, 1)
    const bool low = m < 0.707106781186547524f;
    e = low ? e - 1.0f : e;
    m = low ? m + m - 1.0f : m - 1.0f;
    const float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z - 2.12194440e-4f * e - 0.5f * z;
    const float result = m + y + 0.693359375f * e;
    return x > 0.0f ? result : -std::numeric_limits<float>::infinity();
}

inline double log_nonnegative(double x) { return std::log(x); }

// sum of x[0:size] in four interleaved partial sums (short rows: no vector remainder).
template <typename F>
F sum_of(const F* x, int64_t size) {
    F a = 0, b = 0, c = 0, d = 0;
    int64_t k = 0;
    for (; k + 4 <= size; k += 4) {
        a += x[k];
        b += x[k + 1];
        c += x[k + 2];
        d += x[k + 3];
    }
    for (; k < size; ++k) a += x[k];
    return (a + b) + (c + d);
}

// What the label passes see of a sequence's used scores, for the caller to check them without
// a pass of its own: the lowest entry above -inf (+inf if none), the highest entry (-inf if
// none; +inf if any) and whether any is NaN. Written as extremes[0] = lowest (NaN if any
// entry is), extremes[1] = highest.
template <typename F>
struct Extremes {
    F low = -neg_inf<F>, high = neg_inf<F>;
    int nan = 0;

    void add(const F* x, int64_t size) {
        F lo = low, hi = high;
        int bad = 0;
#pragma omp simd reduction(min : lo) reduction(max : hi) reduction(| : bad)
        for (int64_t c = 0; c < size; ++c) {
            const F v = x[c];
            hi = v > hi ? v : hi;
            lo = v < lo && v > neg_inf<F> ? v : lo;
            bad |= v != v;
        }
        low = lo;
        high = hi;
        nan |= bad;
    }

    void merge(const Extremes& other) {
        low = std::min(low, other.low);
        high = std::max(high, other.high);
        nan |= other.nan;
    }

    void write(F* out) const {
        out[0] = nan ? std::numeric_limits<F>::quiet_NaN() : low;
        out[1] = high;
    }
};

// A chart of S x S entries plus room for the lanes past the last start of a row.
inline int64_t chart_size(int64_t S) { return S * S + S + kLanes; }

// xt[l * P + j] = block[j * L + l]: the L label scores of the count spans [i, i + 1 + j) that
// start at one position (contiguous in the scores), transposed so that the passes over labels
// run vectorised over the spans; -inf past count, up to P = blocks_of(count). Returns P.
template <typename F>
int64_t transpose_labels(const F* block, int64_t count, int64_t L, F* xt) {
    const int64_t P = blocks_of(count);
    for (int64_t j = 0; j < count; ++j) {
        for (int64_t l = 0; l < L; ++l) xt[l * P + j] = block[j * L + l];
    }
    for (int64_t l = 0; l < L; ++l) std::fill(xt + l * P + count, xt + (l + 1) * P, neg_inf<F>);
    return P;
}

struct Item {
    const int64_t n, S, L;  // length, fenceposts (row stride of the charts), labels
};

// T[j * L + l] = shift[j] for j < count: a per-span shift laid out like the span's labels, so
// that the maps over the labels of all spans that start at one position (contiguous in the
// scores) run as one flat vectorised loop.
template <typename F>
void expand(const F* shift, int64_t count, int64_t L, F* T) {
    for (int64_t j = 0; j < count; ++j) std::fill(T + j * L, T + (j + 1) * L, shift[j]);
}

// Below this, a sum of exp(x - shift) may have lost terms that matter in F (those under
// exp(-87) in float flush to 0): the span is then recomputed with its own maximum.
template <typename F>
constexpr F kSafeSum = sizeof(F) == 4 ? F(1e-26) : F(1e-260);

// log-sum-exp over the L labels of one span, shifted by their own maximum.
template <typename F>
F exact_log_sum_exp(const F* x, int64_t L) {
    const F peak = *std::max_element(x, x + L);
    if (peak == neg_inf<F>) return peak;
    F total = 0;
    for (int64_t l = 0; l < L; ++l) total += exp_nonpositive(x[l] - peak);
    return peak + std::log(total);
}

// span[w * S + i] = log-sum-exp over the labels of [i, i + w) for every used span, -inf
// elsewhere. The spans that start at one position share one shift, the maximum of all their
// labels (one flat vectorised pass); a span whose labels all lie far below it is recomputed.
// The same pass writes the Extremes of the used scores to extremes[0:2].
template <typename F>
void label_pass(const F* scores, const Item& t, F* span, F* e, F* total, F* lse, F* extremes) {
    const int64_t S = t.S, L = t.L;
    std::fill(span, span + S * S, neg_inf<F>);
    Extremes<F> seen;
    for (int64_t i = 0; i < t.n; ++i) {
        const int64_t count = t.n - i, size = count * L;
        const F* block = scores + (i * S + i + 1) * L;  // the spans [i, i + 1 + j), j < count
        Extremes<F> here;
        here.add(block, size);
        seen.merge(here);
        const F shift = here.high == neg_inf<F> ? F(0) : here.high;
#pragma omp simd
        for (int64_t c = 0; c < size; ++c) e[c] = exp_nonpositive(block[c] - shift);
        for (int64_t j = 0; j < count; ++j) total[j] = sum_of(e + j * L, L);
        for (int64_t j = 0; j < count; ++j) lse[j] = shift + log_nonnegative(total[j]);
        for (int64_t j = 0; j < count; ++j) {
            span[(j + 1) * S + i] =
                total[j] >= kSafeSum<F> ? lse[j] : exact_log_sum_exp(block + j * L, L);
        }
    }
    seen.write(extremes);
}

// Inside pass of one sequence over span (the labels' log-sum-exp). For each span [i, i + w)
// of width w >= 2 and its splits' scores x_v = chart[v, i] + chart[w - v, i + v]:
// shift[w * S + i] = max_v x_v (0 if every x_v is -inf) and mass[w * S + i] =
// sum_v exp(x_v - shift), so that chart[w * S + i] = span + shift + log(mass), the inside score.
// All three are -inf (mass 0) outside the used spans; single positions have chart = span.
// chart is padded (chart_size). Returns the log-partition.
template <typename F>
F inside_one(const Item& t, const F* span, F* chart, F* shift, F* mass, F* peak, F* total) {
    const int64_t S = t.S;
    std::fill(chart, chart + chart_size(S), neg_inf<F>);
    std::fill(shift, shift + S * S, neg_inf<F>);
    std::fill(mass, mass + S * S, F(0));
    std::copy(span + S, span + S + t.n, chart + S);
    for (int64_t w = 2; w <= t.n; ++w) {
        const int64_t count = t.n - w + 1, padded = blocks_of(count);
        std::fill(peak, peak + padded, neg_inf<F>);
        for (int64_t v = 1; v < w; ++v) {
            const F* left = chart + v * S;
            const F* right = chart + (w - v) * S + v;
            for (int64_t i = 0; i < padded; ++i) peak[i] = std::max(peak[i], left[i] + right[i]);
        }
        for (int64_t i = 0; i < padded; ++i) {
            peak[i] = peak[i] == neg_inf<F> ? F(0) : peak[i];  // no split: the mass stays 0
        }
        std::fill(total, total + padded, F(0));
        for (int64_t v = 1; v < w; ++v) {
            const F* left = chart + v * S;
            const F* right = chart + (w - v) * S + v;
            for (int64_t i = 0; i < padded; ++i) {
                total[i] += exp_nonpositive(left[i] + right[i] - peak[i]);
            }
        }
        for (int64_t i = 0; i < count; ++i) {
            chart[w * S + i] = span[w * S + i] + (peak[i] + log_nonnegative(total[i]));
        }
        std::copy(peak, peak + count, shift + w * S);
        std::copy(total, total + count, mass + w * S);
    }
    return chart[t.n * S];
}

// Outside pass of one sequence in marginal form, from the state of inside_one: mu[w * S + i]
// is the marginal of [i, i + w); widest first, each span passes it to its children in
// proportion to each split's share exp(x_v - shift) / mass of its mass (the inside pass's own
// terms, so the shares sum to 1 and the marginals of a tree's 2n - 1 spans to 2n - 1).
// marginals (S, S, L) gets weight times each span's marginal times each label's share of
// span, and zero outside the used spans.
template <typename F>
void outside_one(const F* scores, const Item& t, const F* span, const F* inside, const F* shift,
                 const F* mass, F weight, F* marginals, F* chart, F* mu, F* scale, F* offset,
                 F* e) {
    const int64_t S = t.S, L = t.L;
    std::copy(inside, inside + S * S, chart);
    std::fill(chart + S * S, chart + chart_size(S), neg_inf<F>);
    std::fill(mu, mu + chart_size(S), F(0));
    mu[t.n * S] = 1;
    for (int64_t w = t.n; w > 1; --w) {
        const int64_t count = t.n - w + 1, padded = blocks_of(count);
        // Each split sends scale * exp(x_v - offset): scale is 0 where nothing flows (an
        // impossible span has mass 0 and every x_v -inf), and past the last start, where the
        // offset +inf also keeps the exp of whatever the lanes read at 0.
        for (int64_t i = 0; i < count; ++i) {
            const F m = mu[w * S + i];
            scale[i] = m > 0 ? m / mass[w * S + i] : F(0);
            offset[i] = shift[w * S + i];
        }
        std::fill(scale + count, scale + padded, F(0));
        std::fill(offset + count, offset + padded, -neg_inf<F>);
        for (int64_t v = 1; v < w; ++v) {
            const F* left = chart + v * S;
            const F* right = chart + (w - v) * S + v;
            F* to_left = mu + v * S;
            F* to_right = mu + (w - v) * S + v;
            for (int64_t i = 0; i < padded; ++i) {
                const F flow = scale[i] * exp_nonpositive(left[i] + right[i] - offset[i]);
                to_left[i] += flow;
                to_right[i] += flow;
            }
        }
    }
    // Label l of [i, i + 1 + j) gets weight * mu * exp(x - span): one flat map over the spans
    // that start at i, with mu and span expanded over the labels (a span whose labels are all
    // -inf has mu 0 and is shifted by 0).
    for (int64_t i = 0; i < t.n; ++i) {
        const int64_t count = t.n - i;
        const F* block = scores + (i * S + i + 1) * L;
        F* out = marginals + (i * S + i + 1) * L;
        for (int64_t j = 0; j < count; ++j) {
            scale[j] = weight * mu[(j + 1) * S + i];
            const F total = span[(j + 1) * S + i];
            offset[j] = total == neg_inf<F> ? F(0) : total;
        }
        expand(scale, count, L, e);
        expand(offset, count, L, e + S * L);
        for (int64_t c = 0; c < count * L; ++c) {
            out[c] = e[c] * exp_nonpositive(block[c] - e[S * L + c]);
        }
        std::fill(marginals + i * S * L, out, F(0));  // [i, j) with j <= i
        std::fill(out + count * L, marginals + (i + 1) * S * L, F(0));  // past the length
    }
    std::fill(marginals + t.n * S * L, marginals + S * S * L, F(0));  // starts past the length
}

// CKY of one sequence: the best tree's score, and its spans as rows [i, j, label] in preorder
// (sorted by start, then by decreasing end). Ties keep the first label and the first split.
// Writes the Extremes of the used scores to extremes[0:2].
template <typename F>
F cky_one(const F* scores, const Item& t, int64_t* rows, F* chart, F* xt, F* peak,
          int32_t* arg, int32_t* label, int32_t* split, F* extremes) {
    const int64_t S = t.S, L = t.L;
    std::fill(chart, chart + chart_size(S), neg_inf<F>);
    Extremes<F> seen;
    for (int64_t i = 0; i < t.n; ++i) {  // the best labels; their scores start the chart
        const int64_t count = t.n - i;
        const F* block = scores + (i * S + i + 1) * L;
        seen.add(block, count * L);
        const int64_t P = transpose_labels(block, count, L, xt);
        std::fill(peak, peak + P, neg_inf<F>);
        std::fill(arg, arg + P, int32_t(0));
        for (int64_t l = 0; l < L; ++l) {
            for (int64_t j = 0; j < P; ++j) {
                const bool better = xt[l * P + j] > peak[j];
                peak[j] = better ? xt[l * P + j] : peak[j];
                arg[j] = better ? int32_t(l) : arg[j];
            }
        }
        for (int64_t j = 0; j < count; ++j) {
            chart[(j + 1) * S + i] = peak[j];
            label[(j + 1) * S + i] = arg[j];
        }
    }
    for (int64_t w = 2; w <= t.n; ++w) {
        const int64_t count = t.n - w + 1, padded = blocks_of(count);
        std::fill(peak, peak + padded, neg_inf<F>);
        std::fill(arg, arg + padded, int32_t(1));
        for (int64_t v = 1; v < w; ++v) {
            const F* left = chart + v * S;
            const F* right = chart + (w - v) * S + v;
            for (int64_t i = 0; i < padded; ++i) {
                const F x = left[i] + right[i];
                const bool better = x > peak[i];
                peak[i] = better ? x : peak[i];
                arg[i] = better ? int32_t(v) : arg[i];
            }
        }
        for (int64_t i = 0; i < count; ++i) {
            chart[w * S + i] += peak[i];
            split[w * S + i] = int32_t(i) + arg[i];
        }
    }
    std::vector<std::pair<int64_t, int64_t>> stack{{0, t.n}};
    while (!stack.empty()) {
        const auto [i, j] = stack.back();
        stack.pop_back();
        rows[0] = i;
        rows[1] = j;
        rows[2] = label[(j - i) * S + i];
        rows += 3;
        if (j - i > 1) {
            const int64_t k = split[(j - i) * S + i];
            stack.emplace_back(k, j);
            stack.emplace_back(i, k);
        }
    }
    seen.write(extremes);
    return chart[t.n * S];
}

template <typename F>
void tree_inside(const F* scores, const int64_t* lengths, int64_t batch, int64_t S, int64_t L,
                 F* span, F* inside, F* shift, F* mass, F* log_z, F* extremes, int threads) {
#pragma omp parallel num_threads(threads)
    {
        std::vector<F> chart(chart_size(S)), peak(blocks_of(S)), total(blocks_of(S)), e(S * L);
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < batch; ++b) {
            const Item t{lengths[b], S, L};
            const int64_t at = b * S * S;
            label_pass(scores + at * L, t, span + at, e.data(), total.data(), peak.data(),
                       extremes + 2 * b);
            log_z[b] = inside_one(t, span + at, chart.data(), shift + at, mass + at, peak.data(),
                                  total.data());
            std::copy(chart.begin(), chart.begin() + S * S, inside + at);
        }
    }
}

template <typename F>
void tree_outside(const F* scores, const int64_t* lengths, int64_t batch, int64_t S, int64_t L,
                  const F* span, const F* inside, const F* shift, const F* mass, const F* weight,
                  F* marginals, int threads) {
#pragma omp parallel num_threads(threads)
    {
        std::vector<F> chart(chart_size(S)), mu(chart_size(S)), scale(blocks_of(S));
        std::vector<F> offset(blocks_of(S)), e(2 * S * L);
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < batch; ++b) {
            const Item t{lengths[b], S, L};
            const int64_t at = b * S * S;
            outside_one(scores + at * L, t, span + at, inside + at, shift + at, mass + at,
                        weight[b], marginals + at * L, chart.data(), mu.data(), scale.data(),
                        offset.data(), e.data());
        }
    }
}

template <typename F>
void tree_cky(const F* scores, const int64_t* lengths, int64_t batch, int64_t S, int64_t L,
              F* score, int64_t* spans, F* extremes, int threads) {
#pragma omp parallel num_threads(threads)
    {
        std::vector<F> chart(chart_size(S)), xt(L * blocks_of(S)), peak(blocks_of(S));
        std::vector<int32_t> arg(blocks_of(S)), label(S * S), split(S * S);
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < batch; ++b) {
            const Item t{lengths[b], S, L};
            score[b] = cky_one(scores + b * S * S * L, t, spans + b * (2 * S - 3) * 3,
                               chart.data(), xt.data(), peak.data(), arg.data(),
                               label.data(), split.data(), extremes + 2 * b);
        }
    }
}

}  // namespace

extern "C" {

#define HYBRID_TREE_EXPORT(F, SUFFIX)                                                            \
    void hybrid_tree_inside_##SUFFIX(const F* scores, const int64_t* lengths, int64_t batch,     \
                                     int64_t size, int64_t labels, F* span, F* inside,          \
                                     F* shift, F* mass, F* log_z, F* extremes, int threads) {    \
        tree_inside<F>(scores, lengths, batch, size, labels, span, inside, shift, mass, log_z,  \
                       extremes, threads);                                                       \
    }                                                                                            \
    void hybrid_tree_outside_##SUFFIX(const F* scores, const int64_t* lengths, int64_t batch,    \
                                      int64_t size, int64_t labels, const F* span,              \
                                      const F* inside, const F* shift, const F* mass,           \
                                      const F* weight, F* marginals, int threads) {              \
        tree_outside<F>(scores, lengths, batch, size, labels, span, inside, shift, mass, weight, \
                        marginals, threads);                                                     \
    }                                                                                            \
    void hybrid_tree_cky_##SUFFIX(const F* scores, const int64_t* lengths, int64_t batch,        \
                                  int64_t size, int64_t labels, F* score, int64_t* spans,       \
                                  F* extremes, int threads) {                                    \
        tree_cky<F>(scores, lengths, batch, size, labels, score, spans, extremes, threads);     \
    }

HYBRID_TREE_EXPORT(float, f32)
HYBRID_TREE_EXPORT(double, f64)

}  // extern "C"

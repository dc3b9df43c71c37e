// Fused CPU kernels for linear chains: scaled forward-backward and Viterbi, one sequence at a
// time, sequences in parallel (OpenMP). Plain C ABI over raw pointers (no Python or torch
// headers), so that it compiles in a few seconds; hybrid/structured/native.py builds and
// loads it.
//
// For K <= 16 SIMD registers of tags, rows are padded to whole 256-bit registers and the
// stride is a compile-time constant: the K x K products then run on vector registers (GCC
// vector extensions) with the outputs kept in registers, instead of short loops with scalar
// remainders. Padding is zero in probability space and -inf in max-plus, so it never counts.
//
// Layouts (all contiguous, row-major): emissions (B, T, K); transitions (K, K) [from, to];
// start, end (K); lengths (B) int64 with 1 <= lengths <= T.
//
// The forward-backward runs in probability space, rescaled at every step. A sequence whose
// rescaling leaves the safe range (mass below sqrt(tiny), or a non-finite posterior) is
// reported through ok[b] = 0; the caller recomputes it in log space.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace {

template <typename F>
struct Chain {
    const F* emissions;
    const int64_t* lengths;
    int64_t steps, tags;
};

// Optional gold paths (B, T): their score is subtracted from log Z (giving the negative
// log-likelihood) and their features from the marginals (giving its gradient).
template <typename F>
struct Gold {
    const int64_t* tags;  // nullptr: none
    const F *transitions, *start, *end;  // raw scores, (K, K), (K), (K)

    double score(const Chain<F>& c, int64_t b) const {
        const int64_t K = c.tags, L = c.lengths[b];
        const int64_t* y = tags + b * c.steps;
        const F* em = c.emissions + b * c.steps * K;
        double total = double(start[y[0]]) + double(end[y[L - 1]]);
        for (int64_t t = 0; t < L; ++t) total += double(em[t * K + y[t]]);
        for (int64_t t = 1; t < L; ++t) total += double(transitions[y[t - 1] * K + y[t]]);
        return total;
    }

    void subtract_counts(const Chain<F>& c, int64_t b, F* unary, F* pair) const {
        const int64_t K = c.tags, L = c.lengths[b];
        const int64_t* y = tags + b * c.steps;
        for (int64_t t = 0; t < L; ++t) unary[t * K + y[t]] -= F(1);
        for (int64_t t = 1; t < L; ++t) pair[y[t - 1] * K + y[t]] -= F(1);
    }
};

// exp(x) for x <= 0 in float, vectorisable: Cody-Waite reduction and the Cephes polynomial
// (within 1e-7 relative of exp); results below the smallest normal float flush to 0.
inline float exp_nonpositive(float x) {
    x = std::max(x, -104.0f);  // also maps -inf to a value whose exp flushes to 0
    const float n = std::floor(x * 1.44269504088896341f + 0.5f);
    const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t exponent = static_cast<int32_t>(n) + 127;
    const int32_t bits = exponent > 0 ? exponent << 23 : 0;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

inline double exp_nonpositive(double x) { return std::exp(x); }

// exp(x - peak) of one step of emissions into out[0:S] (zero on the padding past K); returns
// the peak (0 if every tag is -inf, so that the caller sees zero mass).
template <typename F, int KP>
F exp_step(const F* __restrict__ row, int64_t K, F* __restrict__ out) {
    constexpr F neg_inf = -std::numeric_limits<F>::infinity();
    const int64_t S = KP > 0 ? KP : K;
    F x[KP > 0 ? KP : 1];
    const F* values = row;
    if constexpr (KP > 0) {
        for (int64_t j = 0; j < KP; ++j) x[j] = j < K ? row[j] : neg_inf;
        values = x;
    }
    F peak = neg_inf;
    for (int64_t j = 0; j < S; ++j) peak = std::max(peak, values[j]);
    const F shift = std::isfinite(peak) ? peak : F(0);
    for (int64_t j = 0; j < S; ++j) out[j] = exp_nonpositive(values[j] - shift);
    return shift;
}

// 256-bit vectors (GCC vector extensions) for the padded strides; loads and stores go through
// memcpy, so no alignment is assumed.
template <typename F>
struct Simd;
template <>
struct Simd<float> {
    typedef float V __attribute__((vector_size(32)));
    typedef int32_t I __attribute__((vector_size(32)));
};
template <>
struct Simd<double> {
    typedef double V __attribute__((vector_size(32)));
    typedef int64_t I __attribute__((vector_size(32)));
};

template <typename T>
inline T load(const void* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

template <typename T>
inline void store(void* p, const T& v) {
    std::memcpy(p, &v, sizeof v);
}

// y[0:S] += a * x[0:S]; whole registers when the stride KP is a compile-time constant.
template <typename F, int KP>
inline void axpy(F a, const F* __restrict__ x, F* __restrict__ y, int64_t S) {
    if constexpr (KP > 0) {
        using V = typename Simd<F>::V;
        constexpr int N = sizeof(V) / sizeof(F);
        for (int v = 0; v < KP; v += N) store(y + v, load<V>(y + v) + a * load<V>(x + v));
    } else {
        for (int64_t j = 0; j < S; ++j) y[j] += a * x[j];
    }
}

// y[0:S] = x[0:S] @ A (S, S); with a compile-time stride the S outputs stay in registers.
template <typename F, int KP>
inline void matvec(const F* __restrict__ x, const F* __restrict__ A, F* __restrict__ y, int64_t S) {
    if constexpr (KP > 0) {
        using V = typename Simd<F>::V;
        constexpr int N = sizeof(V) / sizeof(F);
        V acc[KP / N] = {};
        for (int i = 0; i < KP; ++i)
            for (int v = 0; v < KP / N; ++v) acc[v] += x[i] * load<V>(A + i * KP + v * N);
        for (int v = 0; v < KP / N; ++v) store(y + v * N, acc[v]);
    } else {
        std::fill(y, y + S, F(0));
        for (int64_t i = 0; i < S; ++i) axpy<F, KP>(x[i], A + i * S, y, S);
    }
}

// Max-plus step of one source state i: best = max(best, d + row), remembering i where it wins.
template <typename F, int KP>
inline void max_plus(F d, const F* __restrict__ row, F* __restrict__ best,
                     int32_t* __restrict__ arg, int32_t i, int64_t S) {
    if constexpr (KP > 0 && sizeof(F) == sizeof(int32_t)) {
        using V = typename Simd<F>::V;
        using I = typename Simd<F>::I;
        constexpr int N = sizeof(V) / sizeof(F);
        for (int v = 0; v < KP; v += N) {
            const V value = d + load<V>(row + v);
            const V old = load<V>(best + v);
            const I better = value > old;
            store(best + v, better ? value : old);
            store(arg + v, better ? I{} + i : load<I>(arg + v));
        }
    } else {
        for (int64_t j = 0; j < S; ++j) {
            const F v = d + row[j];
            const bool better = v > best[j];
            best[j] = better ? v : best[j];
            arg[j] = better ? i : arg[j];
        }
    }
}

// Parameters padded to a row stride S >= K: S = KP when KP > 0 (a compile-time constant, so
// that the loops over tags unroll into whole vector registers; padding costs less than the
// loop overhead of small K), else S = K.
template <typename F, int KP>
struct Padded {
    int64_t K, S;
    std::vector<F> a, a_t, start, end;  // (S, S), its transpose, (S), (S)

    Padded(const F* a_in, const F* start_in, const F* end_in, int64_t tags, F a_pad, F start_pad,
           F end_pad)
        : K(tags), S(KP > 0 ? KP : tags), a(S * S, a_pad), a_t(S * S, a_pad), start(S, start_pad),
          end(S, end_pad) {
        for (int64_t i = 0; i < K; ++i) {
            start[i] = start_in[i];
            end[i] = end_in[i];
            for (int64_t j = 0; j < K; ++j) a[i * S + j] = a_t[j * S + i] = a_in[i * K + j];
        }
    }
};

// Forward-backward of sequence b, with trans_exp = exp(transitions - trans_peak) and
// end_exp = exp(end - end_peak). Writes log_z[b], ok[b] and, when unary != nullptr, unary
// (T, K) and pair (K, K) = sum_t P(y_{t-1}=i, y_t=j).
template <typename F, int KP>
void forward_backward_one(const Chain<F>& c, int64_t b, const Padded<F, KP>& par, F trans_peak,
                          F end_peak, const Gold<F>& gold, double* log_z, uint8_t* ok, F* unary,
                          F* pair, std::vector<F>& work) {
    const int64_t K = c.tags, S = KP > 0 ? KP : K, L = c.lengths[b];
    const F* __restrict__ em = c.emissions + b * c.steps * K;
    const F* __restrict__ trans_exp = par.a.data();
    const F* __restrict__ trans_exp_t = par.a_t.data();
    const F* __restrict__ start = par.start.data();
    const F* __restrict__ end_exp = par.end.data();
    const F floor = std::sqrt(std::numeric_limits<F>::min());
    work.assign(static_cast<size_t>(2 * L * S + L + 3 * S + S * S), F(0));
    F* __restrict__ alpha = work.data();       // (L, S) normalised forward
    F* __restrict__ gains = alpha + L * S;     // (L, S) exp(emission - peak), zero on the padding
    F* __restrict__ scale = gains + L * S;     // (L) normaliser of each step
    F* __restrict__ beta = scale + L;          // (S)
    F* __restrict__ next = beta + S;           // (S)
    F* __restrict__ message = next + S;        // (S)
    F* __restrict__ pairs = message + S;       // (S, S)
    ok[b] = 0;
    log_z[b] = -std::numeric_limits<double>::infinity();

    // Step 0: start + emission, in double: in float a start score next to an emission of 1e9
    // would be rounded away, and the negative log-likelihood (log Z minus the gold score,
    // both summed in double) with it.
    double peak = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < K; ++j) peak = std::max(peak, double(start[j]) + double(em[j]));
    if (!std::isfinite(peak)) return;
    F total = 0;
    for (int64_t j = 0; j < K; ++j)
        total += alpha[j] = exp_nonpositive(F(double(start[j]) + double(em[j]) - peak));
    const F inverse = F(1) / total;
    for (int64_t j = 0; j < S; ++j) alpha[j] *= inverse;
    scale[0] = total;
    double acc = double(peak);
    double product = total;  // normalisers multiplied up, their log taken every 8 steps

    for (int64_t t = 1; t < L; ++t) {
        const F* __restrict__ prev = alpha + (t - 1) * S;
        F* __restrict__ cur = alpha + t * S;
        F* __restrict__ gain = gains + t * S;
        acc += double(exp_step<F, KP>(em + t * K, K, gain)) + double(trans_peak);
        matvec<F, KP>(prev, trans_exp, cur, S);
        total = 0;
        for (int64_t j = 0; j < S; ++j) total += cur[j] *= gain[j];
        if (!(total >= floor)) return;
        const F inverse = F(1) / total;
        for (int64_t j = 0; j < S; ++j) cur[j] *= inverse;
        scale[t] = total;
        product *= total;  // in [sqrt(tiny), S]: 8 of them stay far inside double's range
        if ((t & 7) == 0) acc += std::log(product), product = 1;
    }
    const F* __restrict__ last = alpha + (L - 1) * S;
    F final_scale = 0;
    for (int64_t j = 0; j < S; ++j) final_scale += last[j] * end_exp[j];
    if (!(final_scale >= floor)) return;
    acc += std::log(product * double(final_scale)) + double(end_peak);

    if (unary != nullptr) {
        F* __restrict__ u = unary + b * c.steps * K;
        const F inverse_final = F(1) / final_scale;
        for (int64_t j = 0; j < S; ++j) beta[j] = end_exp[j] * inverse_final;
        for (int64_t j = 0; j < K; ++j) u[(L - 1) * K + j] = last[j] * beta[j];
        for (int64_t t = L - 1; t >= 1; --t) {
            const F* __restrict__ gain = gains + t * S;
            const F* __restrict__ prev = alpha + (t - 1) * S;
            const F inverse = F(1) / scale[t];
            for (int64_t j = 0; j < S; ++j) message[j] = gain[j] * beta[j] * inverse;
            matvec<F, KP>(message, trans_exp_t, next, S);
            for (int64_t i = 0; i < S; ++i) axpy<F, KP>(prev[i], message, pairs + i * S, S);
            bool finite = true;
            for (int64_t i = 0; i < S; ++i) {
                beta[i] = next[i];
                const F value = prev[i] * next[i];
                finite &= std::isfinite(value);
                if (i < K) u[(t - 1) * K + i] = value;
            }
            if (!finite) {
                std::fill(u, u + c.steps * K, F(0));
                return;
            }
        }
        F* __restrict__ p = pair + b * K * K;
        for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < K; ++j) p[i * K + j] = pairs[i * S + j] * trans_exp[i * S + j];
        if (gold.tags != nullptr) gold.subtract_counts(c, b, u, p);
    }
    log_z[b] = gold.tags != nullptr ? acc - gold.score(c, b) : acc;
    ok[b] = 1;
}

// Viterbi of sequence b: best score and path (path entries past the length are untouched).
// Padded transitions, start and end are -inf, so padding never wins.
template <typename F, int KP>
void viterbi_one(const Chain<F>& c, int64_t b, const Padded<F, KP>& par, F* score,
                 int64_t* path, std::vector<F>& work, std::vector<int32_t>& pointers) {
    const int64_t K = c.tags, S = KP > 0 ? KP : K, L = c.lengths[b];
    const F* __restrict__ em = c.emissions + b * c.steps * K;
    const F* __restrict__ transitions = par.a.data();
    const F neg_inf = -std::numeric_limits<F>::infinity();
    work.assign(static_cast<size_t>(2 * S), neg_inf);
    pointers.resize(static_cast<size_t>(L * S));
    F* __restrict__ delta = work.data();
    F* __restrict__ best = delta + S;
    for (int64_t j = 0; j < K; ++j) delta[j] = par.start[j] + em[j];
    for (int64_t t = 1; t < L; ++t) {
        int32_t* __restrict__ arg = pointers.data() + t * S;
        std::fill(best, best + S, neg_inf);
        std::fill(arg, arg + S, 0);
        for (int64_t i = 0; i < S; ++i)
            max_plus<F, KP>(delta[i], transitions + i * S, best, arg, int32_t(i), S);
        const F* __restrict__ e = em + t * K;
        for (int64_t j = 0; j < K; ++j) delta[j] = best[j] + e[j];
    }
    F top = neg_inf;
    int64_t state = 0;
    for (int64_t j = 0; j < K; ++j) {
        const F v = delta[j] + par.end[j];
        if (v > top) top = v, state = j;
    }
    score[b] = top;
    int64_t* __restrict__ out = path + b * c.steps;
    out[L - 1] = state;
    for (int64_t t = L - 1; t >= 1; --t) out[t - 1] = state = pointers[t * S + state];
}

// Calls fn with the padded row stride for K tags: 1, 2, 4, 8 or 16 registers of F, else K.
template <typename F, typename Fn>
void with_stride(int64_t tags, Fn&& fn) {
    constexpr int V = 32 / sizeof(F);  // lanes of a 256-bit register
    if (tags <= V)
        fn(std::integral_constant<int, V>{});
    else if (tags <= 2 * V)
        fn(std::integral_constant<int, 2 * V>{});
    else if (tags <= 4 * V)
        fn(std::integral_constant<int, 4 * V>{});
    else if (tags <= 8 * V)
        fn(std::integral_constant<int, 8 * V>{});
    else if (tags <= 16 * V)
        fn(std::integral_constant<int, 16 * V>{});
    else
        fn(std::integral_constant<int, 0>{});
}

template <typename F>
void forward_backward(const F* emissions, const int64_t* lengths, int64_t batch, int64_t steps,
                      int64_t tags, const F* trans_exp, F trans_peak, const F* start,
                      const F* end_exp, F end_peak, const Gold<F>& gold, double* log_z,
                      uint8_t* ok, F* unary, F* pair, int threads) {
    const Chain<F> c{emissions, lengths, steps, tags};
    const F neg_inf = -std::numeric_limits<F>::infinity();
    with_stride<F>(tags, [&](auto stride) {
        constexpr int KP = decltype(stride)::value;
        const Padded<F, KP> par(trans_exp, start, end_exp, tags, F(0), neg_inf, F(0));
#pragma omp parallel num_threads(threads)
        {
            std::vector<F> work;
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < batch; ++b)
                forward_backward_one<F, KP>(c, b, par, trans_peak, end_peak, gold, log_z, ok,
                                            unary, pair, work);
        }
    });
}

template <typename F>
void viterbi(const F* emissions, const int64_t* lengths, int64_t batch, int64_t steps,
             int64_t tags, const F* transitions, const F* start, const F* end, F* score,
             int64_t* path, int threads) {
    const Chain<F> c{emissions, lengths, steps, tags};
    const F neg_inf = -std::numeric_limits<F>::infinity();
    with_stride<F>(tags, [&](auto stride) {
        constexpr int KP = decltype(stride)::value;
        const Padded<F, KP> par(transitions, start, end, tags, neg_inf, neg_inf, neg_inf);
#pragma omp parallel num_threads(threads)
        {
            std::vector<F> work;
            std::vector<int32_t> pointers;
#pragma omp for schedule(dynamic, 1)
            for (int64_t b = 0; b < batch; ++b)
                viterbi_one<F, KP>(c, b, par, score, path, work, pointers);
        }
    });
}

}  // namespace

// The digest of the sources this library was built from (setup.py defines it; see
// hybrid/structured/_build.py): the loader refuses a library whose sources have changed.
#ifndef HYBRID_SOURCES_DIGEST
#define HYBRID_SOURCES_DIGEST -1
#endif

extern "C" {

int hybrid_abi_version() { return 5; }

int64_t hybrid_sources_digest() { return HYBRID_SOURCES_DIGEST; }

#define HYBRID_EXPORT(F, SUFFIX)                                                                 \
    void hybrid_forward_backward_##SUFFIX(                                                       \
        const F* emissions, const int64_t* lengths, int64_t batch, int64_t steps, int64_t tags,  \
        const F* trans_exp, F trans_peak, const F* start, const F* end_exp, F end_peak,          \
        const int64_t* gold_tags, const F* transitions, const F* end, double* log_z,             \
        uint8_t* ok, F* unary, F* pair, int threads) {                                           \
        const Gold<F> gold{gold_tags, transitions, start, end};                                  \
        forward_backward<F>(emissions, lengths, batch, steps, tags, trans_exp, trans_peak,       \
                            start, end_exp, end_peak, gold, log_z, ok, unary, pair, threads);    \
    }                                                                                            \
    void hybrid_viterbi_##SUFFIX(const F* emissions, const int64_t* lengths, int64_t batch,      \
                                 int64_t steps, int64_t tags, const F* transitions,              \
                                 const F* start, const F* end, F* score, int64_t* path,          \
                                 int threads) {                                                  \
        viterbi<F>(emissions, lengths, batch, steps, tags, transitions, start, end, score, path, \
                   threads);                                                                     \
    }

HYBRID_EXPORT(float, f32)
HYBRID_EXPORT(double, f64)

}  // extern "C"

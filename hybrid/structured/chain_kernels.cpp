// Fused CPU kernels for linear chains: scaled forward-backward and Viterbi, one sequence at a
// time, sequences in parallel. Plain C ABI over raw pointers (no Python or torch headers), so
// that it compiles in about a second; hybrid/structured/native.py builds and loads it.
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
#include <vector>

namespace {

template <typename F>
struct Chain {
    const F* emissions;
    const int64_t* lengths;
    int64_t steps, tags;
};

// exp(x - peak) of one step of emissions; returns the peak (-inf if every tag is -inf).
template <typename F>
F exp_step(const F* row, int64_t tags, F* out) {
    F peak = -std::numeric_limits<F>::infinity();
    for (int64_t j = 0; j < tags; ++j) peak = std::max(peak, row[j]);
    const F shift = std::isfinite(peak) ? peak : F(0);
    for (int64_t j = 0; j < tags; ++j) out[j] = std::exp(row[j] - shift);
    return shift;
}

// Forward-backward of sequence b. trans_exp = exp(transitions - trans_peak) (K, K) and its
// transpose; start_exp/end_exp likewise with their own peaks. Writes log_z[b], ok[b] and,
// when unary != nullptr, unary (T, K) and pair (K, K) = sum_t P(y_{t-1}=i, y_t=j).
template <typename F>
void forward_backward_one(const Chain<F>& c, int64_t b, const F* trans_exp, const F* trans_exp_t,
                          F trans_peak, const F* start, const F* end_exp, F end_peak,
                          double* log_z, uint8_t* ok, F* unary, F* pair, std::vector<F>& work) {
    const int64_t K = c.tags, L = c.lengths[b];
    const F* em = c.emissions + b * c.steps * K;
    const F floor = std::sqrt(std::numeric_limits<F>::min());
    work.assign(static_cast<size_t>(2 * L * K + L + 3 * K), F(0));
    F* alpha = work.data();       // (L, K) normalised forward
    F* gains = alpha + L * K;     // (L, K) exp(emission - peak)
    F* scale = gains + L * K;     // (L) normaliser of each step
    F* beta = scale + L;          // (K)
    F* next = beta + K;           // (K)
    F* message = next + K;        // (K)
    ok[b] = 0;
    log_z[b] = -std::numeric_limits<double>::infinity();

    // Step 0: start + emission.
    F peak = -std::numeric_limits<F>::infinity();
    for (int64_t j = 0; j < K; ++j) peak = std::max(peak, start[j] + em[j]);
    if (!std::isfinite(peak)) return;
    F total = 0;
    for (int64_t j = 0; j < K; ++j) total += alpha[j] = std::exp(start[j] + em[j] - peak);
    for (int64_t j = 0; j < K; ++j) alpha[j] /= total;
    scale[0] = total;
    double acc = double(peak) + std::log(double(total));

    for (int64_t t = 1; t < L; ++t) {
        const F* prev = alpha + (t - 1) * K;
        F* cur = alpha + t * K;
        F* gain = gains + t * K;
        acc += double(exp_step(em + t * K, K, gain)) + double(trans_peak);
        for (int64_t i = 0; i < K; ++i) {
            const F a = prev[i];
            if (a == F(0)) continue;
            const F* row = trans_exp + i * K;
            for (int64_t j = 0; j < K; ++j) cur[j] += a * row[j];
        }
        total = 0;
        for (int64_t j = 0; j < K; ++j) total += cur[j] *= gain[j];
        if (!(total >= floor)) return;
        for (int64_t j = 0; j < K; ++j) cur[j] /= total;
        scale[t] = total;
        acc += std::log(double(total));
    }
    const F* last = alpha + (L - 1) * K;
    F final_scale = 0;
    for (int64_t j = 0; j < K; ++j) final_scale += last[j] * end_exp[j];
    if (!(final_scale >= floor)) return;
    acc += std::log(double(final_scale)) + double(end_peak);

    if (unary != nullptr) {
        F* u = unary + b * c.steps * K;
        F* p = pair + b * K * K;
        for (int64_t j = 0; j < K; ++j) {
            beta[j] = end_exp[j] / final_scale;
            u[(L - 1) * K + j] = last[j] * beta[j];
        }
        for (int64_t t = L - 1; t >= 1; --t) {
            const F* gain = gains + t * K;
            const F* prev = alpha + (t - 1) * K;
            for (int64_t j = 0; j < K; ++j) message[j] = gain[j] * beta[j] / scale[t];
            std::fill(next, next + K, F(0));
            for (int64_t j = 0; j < K; ++j) {
                const F m = message[j];
                const F* col = trans_exp_t + j * K;
                for (int64_t i = 0; i < K; ++i) next[i] += m * col[i];
            }
            for (int64_t i = 0; i < K; ++i) {
                const F a = prev[i];
                F* prow = p + i * K;
                for (int64_t j = 0; j < K; ++j) prow[j] += a * message[j];
            }
            bool finite = true;
            for (int64_t i = 0; i < K; ++i) {
                beta[i] = next[i];
                const F value = prev[i] * next[i];
                finite &= std::isfinite(value);
                u[(t - 1) * K + i] = value;
            }
            if (!finite) {
                std::fill(u, u + c.steps * K, F(0));
                std::fill(p, p + K * K, F(0));
                return;
            }
        }
        for (int64_t ij = 0; ij < K * K; ++ij) p[ij] *= trans_exp[ij];
    }
    log_z[b] = acc;
    ok[b] = 1;
}

// Viterbi of sequence b: best score and path (path entries past the length are untouched).
template <typename F>
void viterbi_one(const Chain<F>& c, int64_t b, const F* transitions, const F* start,
                 const F* end, F* score, int64_t* path, std::vector<F>& work,
                 std::vector<int32_t>& pointers) {
    const int64_t K = c.tags, L = c.lengths[b];
    const F* em = c.emissions + b * c.steps * K;
    const F neg_inf = -std::numeric_limits<F>::infinity();
    work.assign(static_cast<size_t>(2 * K), neg_inf);
    pointers.assign(static_cast<size_t>(L * K), 0);
    F* delta = work.data();
    F* best = delta + K;
    for (int64_t j = 0; j < K; ++j) delta[j] = start[j] + em[j];
    for (int64_t t = 1; t < L; ++t) {
        int32_t* arg = pointers.data() + t * K;
        std::fill(best, best + K, neg_inf);
        for (int64_t i = 0; i < K; ++i) {
            const F d = delta[i];
            const F* row = transitions + i * K;
            for (int64_t j = 0; j < K; ++j) {
                const F v = d + row[j];
                const bool better = v > best[j];
                best[j] = better ? v : best[j];
                arg[j] = better ? int32_t(i) : arg[j];
            }
        }
        const F* e = em + t * K;
        for (int64_t j = 0; j < K; ++j) delta[j] = best[j] + e[j];
    }
    F top = neg_inf;
    int64_t state = 0;
    for (int64_t j = 0; j < K; ++j) {
        const F v = delta[j] + end[j];
        if (v > top) top = v, state = j;
    }
    score[b] = top;
    int64_t* out = path + b * c.steps;
    out[L - 1] = state;
    for (int64_t t = L - 1; t >= 1; --t) out[t - 1] = state = pointers[t * K + state];
}

template <typename F>
void forward_backward(const F* emissions, const int64_t* lengths, int64_t batch, int64_t steps,
                      int64_t tags, const F* trans_exp, const F* trans_exp_t, F trans_peak,
                      const F* start, const F* end_exp, F end_peak, double* log_z, uint8_t* ok,
                      F* unary, F* pair, int threads) {
    const Chain<F> c{emissions, lengths, steps, tags};
#pragma omp parallel num_threads(threads)
    {
        std::vector<F> work;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < batch; ++b)
            forward_backward_one(c, b, trans_exp, trans_exp_t, trans_peak, start, end_exp,
                                 end_peak, log_z, ok, unary, pair, work);
    }
}

template <typename F>
void viterbi(const F* emissions, const int64_t* lengths, int64_t batch, int64_t steps,
             int64_t tags, const F* transitions, const F* start, const F* end, F* score,
             int64_t* path, int threads) {
    const Chain<F> c{emissions, lengths, steps, tags};
#pragma omp parallel num_threads(threads)
    {
        std::vector<F> work;
        std::vector<int32_t> pointers;
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < batch; ++b)
            viterbi_one(c, b, transitions, start, end, score, path, work, pointers);
    }
}

}  // namespace

extern "C" {

int hybrid_abi_version() { return 1; }

#define HYBRID_EXPORT(F, SUFFIX)                                                                 \
    void hybrid_forward_backward_##SUFFIX(                                                       \
        const F* emissions, const int64_t* lengths, int64_t batch, int64_t steps, int64_t tags,  \
        const F* trans_exp, const F* trans_exp_t, F trans_peak, const F* start, const F* end_exp, \
        F end_peak, double* log_z, uint8_t* ok, F* unary, F* pair, int threads) {               \
        forward_backward<F>(emissions, lengths, batch, steps, tags, trans_exp, trans_exp_t,      \
                            trans_peak, start, end_exp, end_peak, log_z, ok, unary, pair,        \
                            threads);                                                            \
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

// Fused CPU kernel for sparse decoding graphs: exact Viterbi, and token passing with beam
// pruning, one sequence at a time, sequences in parallel (OpenMP). Plain C ABI over raw
// pointers; hybrid/structured/native.py builds it together with chain_kernels.cpp.
//
// Every arc consumes one frame. Arcs are given sorted by source state (CSR: out_offsets has
// num_states + 1 entries); for each arc: destination, emission index (a column of the frame
// scores) and weight. A path's score is start[first source] + sum over frames of
// (arc weight + frame score of the arc's emission) + final[last destination].
//
// Either way a banded or left-to-right graph costs O(T * arcs). With a beam (states below
// best - beam are dropped after each frame) each step relaxes only the out-arcs of the states
// still active. Ties keep the smallest arc index (and the final state with the smallest
// index), like the eager engine.

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

template <typename F>
struct GraphArcs {
    int64_t num_states;
    const int64_t *out_offsets, *src, *dst, *emission;
    const F *weight, *start, *final;
    const int64_t *in_offsets, *in_arcs;  // arcs grouped by destination, in arc order
};

// The best final state (ties: the smallest index; pruned states are -inf) and the backtrace
// of its arcs through the back pointers `back` (length x S).
template <typename F>
void finish(const std::vector<F>& alpha, const std::vector<int32_t>& back, int64_t length,
            const GraphArcs<F>& g, F* score, int64_t* arcs_out) {
    F best = -std::numeric_limits<F>::infinity();
    int64_t state = -1;
    for (int64_t s = 0; s < g.num_states; ++s) {
        const F v = alpha[s] + g.final[s];
        if (v > best) {
            best = v;
            state = s;
        }
    }
    *score = best;
    if (state < 0) return;
    for (int64_t t = length - 1; t >= 0; --t) {
        const int32_t k = back[t * g.num_states + state];
        arcs_out[t] = k;
        state = g.src[k];
    }
}

// Drop the states of `active` that scored below best - beam (their alpha becomes -inf).
template <typename F>
void prune(std::vector<F>& alpha, std::vector<int32_t>& active, F beam) {
    if (std::isinf(beam) || active.empty()) return;
    F best = alpha[active[0]];
    for (int32_t s : active) best = alpha[s] > best ? alpha[s] : best;
    const F threshold = best - beam;
    size_t kept = 0;
    for (int32_t s : active) {
        if (alpha[s] >= threshold) {
            active[kept++] = s;
        } else {
            alpha[s] = -std::numeric_limits<F>::infinity();
        }
    }
    active.resize(kept);
}

// Only the states reached at a frame are visited (and reset) at the next one, so a step
// costs O(arcs leaving the active states), not O(states).
template <typename F>
void graph_viterbi_one(const F* scores, int64_t length, int64_t num_emissions,
                       const GraphArcs<F>& g, F beam, F* score, int64_t* arcs_out) {
    const F ninf = -std::numeric_limits<F>::infinity();
    const int64_t S = g.num_states;
    std::vector<F> alpha(S, ninf), next(S, ninf);
    std::vector<int32_t> active, reached, back((size_t)(length * S));
    for (int64_t s = 0; s < S; ++s) {
        if (g.start[s] > ninf) {
            alpha[s] = g.start[s];
            active.push_back((int32_t)s);
        }
    }
    prune(alpha, active, beam);
    for (int64_t t = 0; t < length; ++t) {
        const F* frame = scores + t * num_emissions;
        int32_t* bp = back.data() + t * S;
        reached.clear();
        for (int32_t s : active) {
            const F from = alpha[s];
            for (int64_t k = g.out_offsets[s]; k < g.out_offsets[s + 1]; ++k) {
                const F v = from + g.weight[k] + frame[g.emission[k]];
                const int64_t d = g.dst[k];
                if (!(v > ninf)) continue;
                if (next[d] == ninf) {
                    reached.push_back((int32_t)d);
                    next[d] = v;
                    bp[d] = (int32_t)k;
                } else if (v > next[d] || (v == next[d] && k < bp[d])) {  // ties: first arc
                    next[d] = v;
                    bp[d] = (int32_t)k;
                }
            }
        }
        for (int32_t s : active) alpha[s] = ninf;
        alpha.swap(next);
        active.swap(reached);
        prune(alpha, active, beam);
    }
    finish(alpha, back, length, g, score, arcs_out);
}

// Exact Viterbi, pulling each state's best incoming arc: every arc is visited once per frame
// in destination order, without branches on reachability, which is faster than pushing when
// nothing is pruned. Ties keep the smallest arc index (in_arcs lists them in arc order).
template <typename F>
void graph_viterbi_exact_one(const F* scores, int64_t length, int64_t num_emissions,
                             const GraphArcs<F>& g, F* score, int64_t* arcs_out) {
    const F ninf = -std::numeric_limits<F>::infinity();
    const int64_t S = g.num_states;
    std::vector<F> alpha(g.start, g.start + S), next(S);
    std::vector<int32_t> back((size_t)(length * S));
    for (int64_t t = 0; t < length; ++t) {
        const F* frame = scores + t * num_emissions;
        int32_t* bp = back.data() + t * S;
        for (int64_t d = 0; d < S; ++d) {
            F best = ninf;
            int32_t arg = -1;
            for (int64_t i = g.in_offsets[d]; i < g.in_offsets[d + 1]; ++i) {
                const int64_t k = g.in_arcs[i];
                const F v = alpha[g.src[k]] + g.weight[k] + frame[g.emission[k]];
                if (v > best) {
                    best = v;
                    arg = (int32_t)k;
                }
            }
            next[d] = best;
            bp[d] = arg;
        }
        alpha.swap(next);
    }
    finish(alpha, back, length, g, score, arcs_out);
}

template <typename F>
void graph_viterbi(const F* scores, const int64_t* lengths, int64_t batch, int64_t steps,
                   int64_t num_emissions, const GraphArcs<F>& g, F beam, F* score,
                   int64_t* arcs_out, int threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t b = 0; b < batch; ++b) {
        const F* sequence = scores + b * steps * num_emissions;
        if (std::isinf(beam)) {
            graph_viterbi_exact_one<F>(sequence, lengths[b], num_emissions, g, score + b,
                                       arcs_out + b * steps);
        } else {
            graph_viterbi_one<F>(sequence, lengths[b], num_emissions, g, beam, score + b,
                                 arcs_out + b * steps);
        }
    }
}

}  // namespace

extern "C" {

#define HYBRID_GRAPH_EXPORT(F, SUFFIX)                                                           \
    void hybrid_graph_viterbi_##SUFFIX(                                                          \
        const F* scores, const int64_t* lengths, int64_t batch, int64_t steps,                   \
        int64_t num_emissions, int64_t num_states, const int64_t* out_offsets,                   \
        const int64_t* src, const int64_t* dst, const int64_t* emission, const F* weight,        \
        const F* start, const F* final, const int64_t* in_offsets, const int64_t* in_arcs,       \
        F beam, F* score, int64_t* arcs_out, int threads) {                                      \
        const GraphArcs<F> g{num_states, out_offsets, src,   dst,       emission,                \
                             weight,     start,       final, in_offsets, in_arcs};               \
        graph_viterbi<F>(scores, lengths, batch, steps, num_emissions, g, beam, score,           \
                         arcs_out, threads);                                                     \
    }

HYBRID_GRAPH_EXPORT(float, f32)
HYBRID_GRAPH_EXPORT(double, f64)

}  // extern "C"

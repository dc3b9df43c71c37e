// Fused CPU kernels for CTC (per-frame symbol scores with a blank symbol): forced alignment
// (Viterbi over the 2 L + 1 lattice) and prefix beam search (Hannun et al., 2014), one
// sequence at a time, sequences in parallel (OpenMP). Plain C ABI over raw pointers;
// hybrid/structured/native.py builds them with the other kernels. They compute exactly what
// the tensorized versions of hybrid/ctc/align.py and hybrid/ctc/beam.py compute (the
// references, which also run on CUDA); the prefix search may break exact ties differently.
//
// Forced alignment: state 2 i + 1 is target symbol i, even states are blanks; a state stays,
// steps from the one before, or skips the blank before it when it holds a symbol unlike the
// one two back. Ties prefer stay, then step, then skip; at the end the final blank wins ties.
//
// Prefix search:
// A hypothesis is a label prefix with two log-probabilities: pb (alignments ending in a
// blank) and pnb (ending in the prefix's last label), a fusion score (weighted LM
// log-probabilities and insertion bonuses so far), a trie node of an optional lexicon and the
// state of an optional n-gram LM. Prefixes are nodes of a per-sequence prefix tree, created
// once each, so two hypotheses hold the same prefix exactly when they hold the same node.
//
// Each frame: every hypothesis stays (blank, or a repeat of its last label) or is extended by
// every allowed symbol; an extension that recreates a prefix already in the beam is added into
// that hypothesis; the `beam` best candidates by total score (log(pb + pnb) + fusion) survive.
//
// The n-gram LM is a back-off model stored as one sorted key table per order (token ids as
// base-`lm_vocab` digits), natural-log probabilities and back-off weights. Unit 1 scores
// every emitted symbol through symbol_tokens; unit 2 scores each completed word: the
// symbols between delimiters walk a trie of the LM's words (word_next, node_words; -1 once
// the partial word leaves the trie, which then scores as <unk>).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <unordered_map>
#include <vector>

namespace {

struct Lexicon {
    const int64_t* next;        // (N, V) next trie node, -1: forbidden; nullptr: no lexicon
    const uint8_t* accepting;   // (N,) where an utterance may end
};

struct NGram {
    int64_t unit;               // 0: no LM, 1: symbols, 2: words
    int64_t order, vocab, bos, eos, unk;
    double weight, bonus;       // lm_weight and insertion_bonus
    const int64_t* offsets;     // (order + 1,) rows of each order in keys/logp/backoff
    const int64_t* keys;
    const double *logp, *backoff;
    const int64_t* symbol_tokens;  // unit 1: (V,) LM token of each symbol
    const int64_t* word_next;      // unit 2: (M, V) trie of the LM's words
    const int64_t* node_words;     // unit 2: (M,) LM id of the word ending at a node (<unk>)
    int64_t delimiter;             // unit 2: the word delimiter symbol

    int64_t context_size() const { return order - 1; }

    // Row of `key` in the table of n-grams of length n, or -1.
    int64_t find(int64_t n, int64_t key) const {
        const int64_t* first = keys + offsets[n - 1];
        const int64_t* last = keys + offsets[n];
        const int64_t* at = std::lower_bound(first, last, key);
        return (at != last && *at == key) ? offsets[n - 1] + (at - first) : -1;
    }

    // log P(next | context) by the back-off rule; context holds context_size() ids, oldest
    // first, -1 where the history is shorter.
    double score(const int64_t* context, int64_t next) const {
        const int64_t size_max = context_size();
        double backoff_sum = 0.0;
        for (int64_t size = size_max; size >= 0; --size) {
            const int64_t* history = context + (size_max - size);
            bool usable = true;
            int64_t key = 0;
            for (int64_t i = 0; i < size; ++i) {
                usable = usable && history[i] >= 0;
                key = key * vocab + std::max<int64_t>(history[i], 0);
            }
            if (!usable) continue;
            const int64_t row = find(size + 1, key * vocab + next);
            if (row >= 0) return backoff_sum + logp[row];
            if (size > 0) {
                const int64_t listed = find(size, key);
                if (listed >= 0) backoff_sum += backoff[listed];
            }
        }
        return 0.0;
    }

    // Append `token` to the context, dropping the oldest id.
    void push(int64_t* context, int64_t token) const {
        const int64_t size = context_size();
        if (size == 0) return;
        std::copy(context + 1, context + size, context);
        context[size - 1] = token;
    }

    int64_t word(int64_t node) const { return node >= 0 ? node_words[node] : unk; }
};

template <typename F>
struct Settings {
    int64_t vocab, blank, beam, nbest;
    int64_t prune_top;    // > 0: only the prune_top most likely symbols may start a label
    F prune_threshold;    // else those scoring at least this (and the most likely)
    Lexicon lexicon;
    NGram lm;
};

template <typename F>
F log_add(F a, F b) {
    const F high = a > b ? a : b;
    if (high == -std::numeric_limits<F>::infinity()) return high;
    return high + std::log1p(std::exp(-std::fabs(a - b)));
}

// The hypotheses of a beam as parallel arrays; contexts hold context_size() ids each.
template <typename F>
struct Beam {
    std::vector<int32_t> prefix;   // prefix tree node
    std::vector<F> pb, pnb, fusion;
    std::vector<int64_t> lexicon_node, word_node, context;

    void clear() {
        prefix.clear(); pb.clear(); pnb.clear(); fusion.clear();
        lexicon_node.clear(); word_node.clear(); context.clear();
    }
    size_t size() const { return prefix.size(); }
};

// The prefixes of one sequence: node 0 is the empty prefix.
struct PrefixTree {
    int64_t vocab;
    std::vector<int32_t> parent{-1}, symbol{-1}, length{0};
    std::unordered_map<int64_t, int32_t> children;

    int32_t child(int32_t node, int64_t c) {
        const auto [at, added] = children.try_emplace(node * vocab + c, (int32_t)parent.size());
        if (added) {
            parent.push_back(node);
            symbol.push_back((int32_t)c);
            length.push_back(length[node] + 1);
        }
        return at->second;
    }
};

struct Candidate {
    double total;
    int32_t source;  // hypothesis it stays on or extends
    int32_t symbol;  // -1: stays
};

template <typename F>
class Search {
  public:
    Search(const Settings<F>& s) : s_(s), tree_{s.vocab} {
        const int64_t ctx = s.lm.unit ? s.lm.context_size() : 0;
        beam_.prefix.push_back(0);
        beam_.pb.push_back(0);
        beam_.pnb.push_back(-inf());
        beam_.fusion.push_back(0);
        beam_.lexicon_node.push_back(0);
        beam_.word_node.push_back(0);
        for (int64_t i = 0; i < ctx; ++i) beam_.context.push_back(i + 1 == ctx ? s.lm.bos : -1);
    }

    void step(const F* frame);
    void finish(int64_t steps, int64_t* labels, int64_t* lengths, F* scores, F* acoustic);

  private:
    static F inf() { return std::numeric_limits<F>::infinity(); }
    int64_t ctx() const { return s_.lm.unit ? s_.lm.context_size() : 0; }
    void allowed_symbols(const F* frame);
    F gain(size_t k, int64_t c) const;
    void merge(std::vector<F>& stay_pnb);
    void advance(const std::vector<F>& stay_pb, const std::vector<F>& stay_pnb, size_t kept);

    const Settings<F>& s_;
    PrefixTree tree_;
    Beam<F> beam_, next_;
    std::vector<uint8_t> allowed_;
    std::vector<F> extend_, gains_;
    std::vector<Candidate> candidates_;
    std::vector<int32_t> slot_;     // hypothesis holding each tree node this frame, or -1
};

template <typename F>
void Search<F>::allowed_symbols(const F* frame) {
    const int64_t V = s_.vocab;
    allowed_.assign(V, 0);
    F threshold = s_.prune_threshold;
    if (s_.prune_top > 0 && s_.prune_top < V) {
        std::vector<F> sorted(frame, frame + V);
        std::nth_element(sorted.begin(), sorted.begin() + (s_.prune_top - 1), sorted.end(),
                         std::greater<F>());
        threshold = sorted[s_.prune_top - 1];
    } else if (s_.prune_top > 0) {
        threshold = -inf();
    }
    const int64_t best = std::max_element(frame, frame + V) - frame;
    for (int64_t c = 0; c < V; ++c) allowed_[c] = frame[c] >= threshold || c == best;
    allowed_[s_.blank] = 0;
}

// Fusion score of appending symbol c to hypothesis k: weighted LM log-prob and bonus.
template <typename F>
F Search<F>::gain(size_t k, int64_t c) const {
    const NGram& lm = s_.lm;
    if (lm.unit == 0) return (F)lm.bonus;
    const int64_t* context = beam_.context.data() + k * ctx();
    if (lm.unit == 1) return (F)(lm.weight * lm.score(context, lm.symbol_tokens[c]) + lm.bonus);
    const int64_t node = beam_.word_node[k];
    if (c != lm.delimiter || node == 0) return 0;
    return (F)(lm.weight * lm.score(context, lm.word(node)) + lm.bonus);
}

// Fold every extension that recreates a prefix in the beam into that hypothesis' pnb.
template <typename F>
void Search<F>::merge(std::vector<F>& stay_pnb) {
    const int64_t V = s_.vocab;
    slot_.resize(tree_.parent.size(), -1);
    for (size_t k = 0; k < beam_.size(); ++k) slot_[beam_.prefix[k]] = (int32_t)k;
    for (size_t j = 0; j < beam_.size(); ++j) {
        const int32_t node = beam_.prefix[j];
        if (node == 0) continue;
        const int32_t k = slot_[tree_.parent[node]];
        if (k < 0) continue;
        F& folded = extend_[k * V + tree_.symbol[node]];
        stay_pnb[j] = log_add(stay_pnb[j], folded);
        folded = -inf();
    }
    for (size_t k = 0; k < beam_.size(); ++k) slot_[beam_.prefix[k]] = -1;
}

template <typename F>
void Search<F>::step(const F* frame) {
    const int64_t V = s_.vocab;
    const size_t K = beam_.size();
    allowed_symbols(frame);
    std::vector<F> stay_pb(K), stay_pnb(K), acoustic(K);
    extend_.assign(K * V, -inf());
    gains_.assign(K * V, 0);
    for (size_t k = 0; k < K; ++k) {
        acoustic[k] = log_add(beam_.pb[k], beam_.pnb[k]);
        const int32_t last = tree_.symbol[beam_.prefix[k]];
        stay_pb[k] = acoustic[k] + frame[s_.blank];
        stay_pnb[k] = last >= 0 ? beam_.pnb[k] + frame[last] : -inf();
        const int64_t* lexicon = s_.lexicon.next ? s_.lexicon.next + beam_.lexicon_node[k] * V
                                                 : nullptr;
        for (int64_t c = 0; c < V; ++c) {
            if (!allowed_[c] || (lexicon && lexicon[c] < 0)) continue;
            extend_[k * V + c] = (c == last ? beam_.pb[k] : acoustic[k]) + frame[c];
        }
    }
    merge(stay_pnb);
    candidates_.clear();
    for (size_t k = 0; k < K; ++k) {
        const F stay = log_add(stay_pb[k], stay_pnb[k]) + beam_.fusion[k];
        if (stay > -inf()) candidates_.push_back({(double)stay, (int32_t)k, -1});
        for (int64_t c = 0; c < V; ++c) {
            if (extend_[k * V + c] == -inf()) continue;
            gains_[k * V + c] = gain(k, c);
            const F total = extend_[k * V + c] + beam_.fusion[k] + gains_[k * V + c];
            if (total > -inf()) candidates_.push_back({(double)total, (int32_t)k, (int32_t)c});
        }
    }
    const size_t kept = std::min<size_t>(candidates_.size(), s_.beam);
    std::nth_element(candidates_.begin(), candidates_.begin() + (kept ? kept - 1 : 0),
                     candidates_.end(),
                     [](const Candidate& a, const Candidate& b) { return a.total > b.total; });
    advance(stay_pb, stay_pnb, kept);
}

// Build the next beam from the first `kept` candidates.
template <typename F>
void Search<F>::advance(const std::vector<F>& stay_pb, const std::vector<F>& stay_pnb,
                        size_t kept) {
    const int64_t V = s_.vocab, C = ctx();
    const NGram& lm = s_.lm;
    next_.clear();
    for (size_t i = 0; i < kept; ++i) {
        const Candidate& cand = candidates_[i];
        const size_t k = cand.source;
        const int64_t c = cand.symbol;
        const int64_t* context = beam_.context.data() + k * C;
        next_.context.insert(next_.context.end(), context, context + C);
        int64_t* new_context = next_.context.data() + i * C;
        int64_t word_node = beam_.word_node[k];
        if (c < 0) {
            next_.prefix.push_back(beam_.prefix[k]);
            next_.pb.push_back(stay_pb[k]);
            next_.pnb.push_back(stay_pnb[k]);
            next_.fusion.push_back(beam_.fusion[k]);
            next_.lexicon_node.push_back(beam_.lexicon_node[k]);
            next_.word_node.push_back(word_node);
            continue;
        }
        next_.prefix.push_back(tree_.child(beam_.prefix[k], c));
        next_.pb.push_back(-inf());
        next_.pnb.push_back(extend_[k * V + c]);
        next_.fusion.push_back(beam_.fusion[k] + gains_[k * V + c]);
        next_.lexicon_node.push_back(
            s_.lexicon.next ? s_.lexicon.next[beam_.lexicon_node[k] * V + c] : 0);
        if (lm.unit == 1) {
            lm.push(new_context, lm.symbol_tokens[c]);
        } else if (lm.unit == 2 && c == lm.delimiter) {
            if (word_node != 0) lm.push(new_context, lm.word(word_node));
            word_node = 0;
        } else if (lm.unit == 2) {
            word_node = word_node >= 0 ? lm.word_next[word_node * V + c] : -1;
        }
        next_.word_node.push_back(word_node);
    }
    std::swap(beam_, next_);
}

// The nbest hypotheses by final score (end-of-utterance LM score, lexicon word ends).
template <typename F>
void Search<F>::finish(int64_t steps, int64_t* labels, int64_t* lengths, F* scores,
                       F* acoustic) {
    const NGram& lm = s_.lm;
    const int64_t C = ctx();
    std::vector<Candidate> ranked;
    for (size_t k = 0; k < beam_.size(); ++k) {
        const F sound = log_add(beam_.pb[k], beam_.pnb[k]);
        F total = sound + beam_.fusion[k];
        if (lm.unit) {
            std::vector<int64_t> context(beam_.context.begin() + k * C,
                                         beam_.context.begin() + (k + 1) * C);
            double end = 0.0, units = 0.0;
            const int64_t node = beam_.word_node[k];
            if (lm.unit == 2 && node != 0) {
                end += lm.score(context.data(), lm.word(node));
                lm.push(context.data(), lm.word(node));
                units = 1.0;
            }
            end += lm.score(context.data(), lm.eos);
            total = total + (F)(lm.weight * end + lm.bonus * units);
        }
        if (s_.lexicon.next && !s_.lexicon.accepting[beam_.lexicon_node[k]]) continue;
        if (total > -inf()) ranked.push_back({(double)total, (int32_t)k, 0});
    }
    std::sort(ranked.begin(), ranked.end(),
              [](const Candidate& a, const Candidate& b) { return a.total > b.total; });
    for (int64_t n = 0; n < s_.nbest; ++n) {
        if (n >= (int64_t)ranked.size()) {
            scores[n] = acoustic[n] = -inf();
            lengths[n] = 0;
            continue;
        }
        const size_t k = ranked[n].source;
        scores[n] = (F)ranked[n].total;
        acoustic[n] = log_add(beam_.pb[k], beam_.pnb[k]);
        int32_t node = beam_.prefix[k];
        lengths[n] = tree_.length[node];
        for (int64_t i = lengths[n] - 1; i >= 0; --i, node = tree_.parent[node]) {
            labels[n * steps + i] = tree_.symbol[node];
        }
    }
}

// The best lattice path of one sequence: states[t] for t < length, and its score.
template <typename F>
void forced_align_one(const F* log_probs, int64_t length, int64_t vocab, const int64_t* target,
                      int64_t target_length, int64_t blank, int64_t* states, F* score) {
    const F neg = -std::numeric_limits<F>::infinity();
    const int64_t W = 2 * target_length + 1;
    std::vector<int64_t> symbol(W, blank);
    std::vector<uint8_t> skip(W, 0);
    for (int64_t s = 1; s < W; s += 2) symbol[s] = target[s / 2];
    for (int64_t s = 3; s < W; s += 2) skip[s] = symbol[s] != symbol[s - 2];
    std::vector<F> alpha(W, neg), next(W);
    std::vector<uint8_t> back(length * W, 0);
    alpha[0] = log_probs[blank];
    if (W > 1) alpha[1] = log_probs[symbol[1]];
    for (int64_t t = 1; t < length; ++t) {
        const F* frame = log_probs + t * vocab;
        uint8_t* moves = back.data() + t * W;
        for (int64_t s = 0; s < W; ++s) {
            F best = alpha[s];
            uint8_t move = 0;
            if (s >= 1 && alpha[s - 1] > best) best = alpha[s - 1], move = 1;
            if (s >= 2 && skip[s] && alpha[s - 2] > best) best = alpha[s - 2], move = 2;
            next[s] = best + frame[symbol[s]];
            moves[s] = move;
        }
        std::swap(alpha, next);
    }
    int64_t state = W - 1;
    if (W > 1 && alpha[W - 2] > alpha[W - 1]) state = W - 2;
    *score = alpha[state];
    for (int64_t t = length - 1; t >= 0; --t) {
        states[t] = state;
        state -= back[t * W + state];
    }
}

template <typename F>
void forced_align(const F* log_probs, const int64_t* lengths, int64_t batch, int64_t steps,
                  int64_t vocab, const int64_t* targets, const int64_t* target_lengths,
                  int64_t width, int64_t blank, int64_t* states, F* scores, int threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t b = 0; b < batch; ++b) {
        forced_align_one<F>(log_probs + b * steps * vocab, lengths[b], vocab,
                            targets + b * width, target_lengths[b], blank, states + b * steps,
                            scores + b);
    }
}

template <typename F>
void prefix_beam(const F* log_probs, const int64_t* lengths, int64_t batch, int64_t steps,
                 const Settings<F>& s, int64_t* labels, int64_t* label_lengths, F* scores,
                 F* acoustic, int threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t b = 0; b < batch; ++b) {
        Search<F> search(s);
        const F* sequence = log_probs + b * steps * s.vocab;
        for (int64_t t = 0; t < lengths[b]; ++t) search.step(sequence + t * s.vocab);
        search.finish(steps, labels + b * s.nbest * steps, label_lengths + b * s.nbest,
                      scores + b * s.nbest, acoustic + b * s.nbest);
    }
}

}  // namespace

extern "C" {

#define HYBRID_PREFIX_EXPORT(F, SUFFIX)                                                         \
    void hybrid_prefix_beam_##SUFFIX(                                                           \
        const F* log_probs, const int64_t* lengths, int64_t batch, int64_t steps,               \
        int64_t vocab, int64_t blank, int64_t beam, int64_t nbest, int64_t prune_top,           \
        F prune_threshold, const int64_t* lexicon_next, const uint8_t* lexicon_accepting,       \
        int64_t unit, int64_t order, int64_t lm_vocab, int64_t bos, int64_t eos, int64_t unk,   \
        double weight, double bonus, const int64_t* offsets, const int64_t* keys,               \
        const double* logp, const double* backoff, const int64_t* symbol_tokens,                \
        const int64_t* word_next, const int64_t* node_words, int64_t delimiter,                 \
        int64_t* labels, int64_t* label_lengths, F* scores, F* acoustic, int threads) {         \
        const Settings<F> s{vocab,                                                              \
                            blank,                                                              \
                            beam,                                                               \
                            nbest,                                                              \
                            prune_top,                                                          \
                            prune_threshold,                                                    \
                            {lexicon_next, lexicon_accepting},                                  \
                            {unit, order, lm_vocab, bos, eos, unk, weight, bonus, offsets,      \
                             keys, logp, backoff, symbol_tokens, word_next, node_words,         \
                             delimiter}};                                                       \
        prefix_beam<F>(log_probs, lengths, batch, steps, s, labels, label_lengths, scores,      \
                       acoustic, threads);                                                      \
    }

HYBRID_PREFIX_EXPORT(float, f32)
HYBRID_PREFIX_EXPORT(double, f64)

#define HYBRID_ALIGN_EXPORT(F, SUFFIX)                                                          \
    void hybrid_ctc_align_##SUFFIX(const F* log_probs, const int64_t* lengths, int64_t batch,   \
                                   int64_t steps, int64_t vocab, const int64_t* targets,        \
                                   const int64_t* target_lengths, int64_t width, int64_t blank, \
                                   int64_t* states, F* scores, int threads) {                   \
        forced_align<F>(log_probs, lengths, batch, steps, vocab, targets, target_lengths,       \
                        width, blank, states, scores, threads);                                 \
    }

HYBRID_ALIGN_EXPORT(float, f32)
HYBRID_ALIGN_EXPORT(double, f64)

}  // extern "C"

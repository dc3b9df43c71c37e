"""Token encoders: shapes, padding invariance, gradients, dropout, pretrained vectors, errors."""

from __future__ import annotations

import pytest
import torch

from hybrid.nn.encoders import CharEncoder, SequenceEncoder

F64 = {"rtol": 1e-10, "atol": 1e-12}
NUM_WORDS, NUM_CHARS, NUM_FEATURES = 30, 12, 6


def make_encoder(**kwargs) -> SequenceEncoder:
    options = {
        "num_words": NUM_WORDS,
        "word_dim": 8,
        "hidden": 5,
        "num_chars": NUM_CHARS,
        "char_dim": 4,
        "char_out": 6,
        "num_features": NUM_FEATURES,
        "feature_dim": 3,
        "dropout": 0.3,
    }
    options.update(kwargs)
    return SequenceEncoder(**options)


def make_batch(lengths: list[int], steps: int | None = None, max_chars: int = 5, seed: int = 0):
    """Right-padded words, chars and features (pad 0) for sequences of the given lengths."""
    g = torch.Generator().manual_seed(seed)
    steps = steps or max(lengths)
    batch = len(lengths)
    words = torch.randint(1, NUM_WORDS, (batch, steps), generator=g)
    features = torch.randint(1, NUM_FEATURES, (batch, steps), generator=g)
    chars = torch.randint(1, NUM_CHARS, (batch, steps, max_chars), generator=g)
    word_lengths = torch.randint(1, max_chars + 1, (batch, steps), generator=g)
    chars[torch.arange(max_chars) >= word_lengths[..., None]] = 0
    past = torch.arange(steps) >= torch.tensor(lengths)[:, None]
    words[past], features[past], chars[past] = 0, 0, 0
    return words, torch.tensor(lengths), chars, features


def pad_time(x: torch.Tensor, extra: int) -> torch.Tensor:
    """Append ``extra`` padding steps (index 0) along dimension 1."""
    shape = list(x.shape)
    shape[1] = extra
    return torch.cat([x, x.new_zeros(shape)], dim=1)


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("char_encoder", ["cnn", "lstm", None])
@pytest.mark.parametrize("rnn", ["lstm", "gru", "rnn"])
def test_shapes_and_zeros_past_each_length(rnn, char_encoder, layers):
    encoder = make_encoder(rnn=rnn, char_encoder=char_encoder, layers=layers)
    words, lengths, chars, features = make_batch([4, 1, 3], steps=6)
    chars = chars if char_encoder else None
    states, summary = encoder(words, lengths, chars, features)
    assert encoder.output_dim == 10
    assert states.shape == (3, 6, 10) and summary.shape == (3, 10)
    assert states.dtype == summary.dtype == torch.float32
    past = torch.arange(6) >= lengths[:, None]
    assert torch.all(states[past] == 0)
    assert torch.all(states[~past].abs().sum(-1) > 0)


@pytest.mark.parametrize("kind", ["cnn", "lstm"])
def test_char_encoder_shapes_and_empty_words(kind):
    encoder = CharEncoder(NUM_CHARS, char_dim=4, out_dim=6, kind=kind)
    chars = torch.randint(1, NUM_CHARS, (2, 3, 4))
    chars[0, 1] = 0
    chars[1, 2, 2:] = 0
    out = encoder(chars)
    assert out.shape == (2, 3, 6)
    assert torch.all(out[0, 1] == 0)
    assert torch.all(out.abs().sum(-1)[chars[..., 0] != 0] > 0)
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters())


@pytest.mark.parametrize("kind", ["cnn", "lstm"])
def test_char_encoder_all_empty_and_no_char_dimension(kind):
    encoder = CharEncoder(NUM_CHARS, kind=kind)
    assert torch.equal(encoder(torch.zeros(2, 3, 4, dtype=torch.long)), torch.zeros(2, 3, 50))
    assert torch.equal(encoder(torch.zeros(2, 3, 0, dtype=torch.long)), torch.zeros(2, 3, 50))


@pytest.mark.parametrize("kind", ["cnn", "lstm"])
def test_char_encoder_ignores_padding_characters(kind):
    encoder = CharEncoder(NUM_CHARS, char_dim=4, out_dim=6, kind=kind).double()
    _, _, chars, _ = make_batch([3, 2], max_chars=4)
    padded = torch.cat([chars, chars.new_zeros(2, 3, 5)], dim=2)
    torch.testing.assert_close(encoder(padded), encoder(chars), **F64)
    alone = encoder(chars[1:, :1, :])
    torch.testing.assert_close(alone[0, 0], encoder(chars)[1, 0], **F64)


@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("char_encoder", ["cnn", "lstm"])
@pytest.mark.parametrize("rnn", ["lstm", "gru", "rnn"])
def test_padding_invariance(rnn, char_encoder, layers):
    encoder = make_encoder(rnn=rnn, char_encoder=char_encoder, layers=layers).double().eval()
    words, lengths, chars, features = make_batch([5, 2, 4])
    states, summary = encoder(words, lengths, chars, features)
    # More padding steps at the end of the batch.
    more = encoder(pad_time(words, 3), lengths, pad_time(chars, 3), pad_time(features, 3))
    torch.testing.assert_close(more[0][:, :5], states, **F64)
    torch.testing.assert_close(more[1], summary, **F64)
    # Each sequence alone, unpadded, versus inside the batch with longer ones.
    for b, n in enumerate(lengths.tolist()):
        alone = encoder(
            words[b : b + 1, :n], lengths[b : b + 1], chars[b : b + 1, :n], features[b : b + 1, :n]
        )
        torch.testing.assert_close(alone[0][0], states[b, :n], **F64)
        torch.testing.assert_close(alone[1][0], summary[b], **F64)


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("rnn", ["lstm", "gru", "rnn"])
def test_states_equal_torch_bidirectional_rnn_on_each_sequence_alone(rnn, layers):
    """Oracle: torch.nn's packed-free bidirectional RNN, same weights, one unpadded sequence."""
    encoder = make_encoder(rnn=rnn, char_encoder=None, num_features=0, layers=layers)
    encoder = encoder.double().eval()
    network = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[rnn]
    reference = network(8, 5, num_layers=layers, batch_first=True, bidirectional=True).double()
    reference.load_state_dict(
        {
            f"{name}_l{layer}{suffix}": getattr(direction[layer], f"{name}_l0")
            for layer in range(layers)
            for suffix, direction in (
                ("", encoder.rnn.left_to_right),
                ("_reverse", encoder.rnn.right_to_left),
            )
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        }
    )
    words, lengths, _, _ = make_batch([4, 2, 3, 1], steps=6)
    states, summary = encoder(words, lengths)
    for b, n in enumerate(lengths.tolist()):
        expected, final = reference(encoder.word_embedding(words[b : b + 1, :n]))
        torch.testing.assert_close(states[b, :n], expected[0], **F64)
        assert (states[b, n:] == 0).all()
        final = final[0] if rnn == "lstm" else final
        torch.testing.assert_close(summary[b], torch.cat([final[-2, 0], final[-1, 0]]), **F64)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_bidirectional_state_dict_loads(rnn):
    """Weights saved from a torch.nn bidirectional RNN (older taggers) load into `BiRNN`."""
    encoder = make_encoder(rnn=rnn, layers=2)
    network = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[rnn]
    reference = network(8 + 6 + 3, 5, num_layers=2, batch_first=True, bidirectional=True)
    encoder.rnn.load_state_dict(reference.state_dict())
    torch.testing.assert_close(
        encoder.rnn.right_to_left[1].weight_hh_l0, reference.weight_hh_l1_reverse
    )
    torch.testing.assert_close(encoder.rnn.left_to_right[0].bias_ih_l0, reference.bias_ih_l0)


def test_character_bilstm_equals_torch_lstm_on_each_word_and_loads_its_weights():
    """The character BiLSTM (unpacked, so that it exports) gives each word the final states
    of a ``torch.nn.LSTM(bidirectional=True)`` run on that word alone, and loads the weights
    of one (character encoders saved before it was unpacked)."""
    torch.manual_seed(0)
    encoder = CharEncoder(NUM_CHARS, char_dim=4, out_dim=6, kind="lstm").double()
    reference = torch.nn.LSTM(4, 3, batch_first=True, bidirectional=True).double()
    encoder.network.lstm.load_state_dict(reference.state_dict())
    _, _, chars, _ = make_batch([4, 2], max_chars=6)
    got = encoder(chars)
    for b, t in [(0, 0), (0, 3), (1, 1)]:
        word = chars[b, t][chars[b, t] > 0]
        _, (final, _) = reference(encoder.network.embedding(word)[None])
        torch.testing.assert_close(got[b, t], torch.cat([final[0, 0], final[1, 0]]), **F64)
    assert torch.equal(got[1, 2:], torch.zeros_like(got[1, 2:]))  # padding words


def test_lengths_as_mask_equal_lengths():
    encoder = make_encoder().eval()
    words, lengths, chars, features = make_batch([4, 2], steps=5)
    mask = torch.arange(5) < lengths[:, None]
    for got, expected in zip(
        encoder(words, mask, chars, features), encoder(words, lengths, chars, features), strict=True
    ):
        assert torch.equal(got, expected)


@pytest.mark.parametrize("char_encoder", ["cnn", "lstm"])
def test_gradients_reach_every_embedding(char_encoder):
    encoder = make_encoder(char_encoder=char_encoder, layers=2)
    words, lengths, chars, features = make_batch([4, 2, 3])
    states, summary = encoder(words, lengths, chars, features)
    (states.sum() + summary.sum()).backward()
    embeddings = {
        "word": (encoder.word_embedding, words),
        "char": (encoder.char_encoder.network.embedding, chars),
        "feature": (encoder.feature_embedding, features),
    }
    for name, (embedding, used) in embeddings.items():
        grad = embedding.weight.grad
        assert grad is not None and torch.isfinite(grad).all(), name
        assert grad[used[used != 0]].abs().sum() > 0, name
        assert torch.all(grad[0] == 0), f"{name} padding row got a gradient"
    assert all(p.grad is not None for p in encoder.parameters())


def test_dropout_only_in_training_mode():
    encoder = make_encoder(layers=2, dropout=0.5)
    batch = make_batch([4, 3])
    first, second = encoder(*batch), encoder(*batch)
    assert not torch.equal(first[0], second[0])
    encoder.eval()
    first, second = encoder(*batch), encoder(*batch)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    without = make_encoder(layers=2, dropout=0.0)
    without.load_state_dict(encoder.state_dict())
    assert torch.equal(without.train()(*batch)[0], first[0])


def test_deterministic_for_a_fixed_seed():
    outputs = []
    for _ in range(2):
        torch.manual_seed(123)
        encoder = make_encoder(char_encoder="lstm", layers=2)
        outputs.append(encoder(*make_batch([4, 2, 3])))
    assert torch.equal(outputs[0][0], outputs[1][0])
    assert torch.equal(outputs[0][1], outputs[1][1])


VOCABULARY = ["<pad>", "the", "cat", "sat", "on", "mat"]


@pytest.mark.parametrize("header", [True, False])
def test_load_vectors_sets_exactly_the_found_rows(tmp_path, header):
    path = tmp_path / "vectors.txt"
    lines = [
        "the 1 2 3",
        "dog 4 5 6",
        "sat -1.5 0.25 1e-2",
        "the 9 9 9",
        "<pad> 7 7 7",
        "",
    ]
    path.write_text(("5 3\n" if header else "") + "\n".join(lines), encoding="utf-8")
    encoder = SequenceEncoder(len(VOCABULARY), word_dim=3, hidden=2)
    before = encoder.word_embedding.weight.detach().clone()
    assert encoder.load_vectors(path, VOCABULARY) == 2
    after = encoder.word_embedding.weight.detach()
    assert torch.equal(after[1], torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(after[3], torch.tensor([-1.5, 0.25, 1e-2]))
    for row in (0, 2, 4, 5):
        assert torch.equal(after[row], before[row])


def test_load_vectors_dimension_mismatch_names_file_and_line(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("the 1 2 3\ncat 1 2\n", encoding="utf-8")
    encoder = SequenceEncoder(len(VOCABULARY), word_dim=3, hidden=2)
    with pytest.raises(ValueError, match=rf"{path}:2: expected a word and 3 values, got 2"):
        encoder.load_vectors(path, VOCABULARY)
    path.write_text("2 4\nthe 1 2 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{path}:1: header gives dimension 4"):
        encoder.load_vectors(path, VOCABULARY)
    path.write_text("the 1 x 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{path}:1:"):
        encoder.load_vectors(path, VOCABULARY)


def test_load_vectors_checks_the_vocabulary(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("the 1 2 3\n", encoding="utf-8")
    encoder = SequenceEncoder(len(VOCABULARY), word_dim=3, hidden=2)
    with pytest.raises(ValueError, match="vocabulary_tokens must have num_words = 6"):
        encoder.load_vectors(path, VOCABULARY[:-1])
    with pytest.raises(ValueError, match="duplicate token 'the'"):
        encoder.load_vectors(path, [*VOCABULARY[:-1], "the"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layers": 0}, "layers"),
        ({"layers": 4}, "layers"),
        ({"rnn": "transformer"}, "rnn"),
        ({"char_encoder": "bilstm"}, "char_encoder"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"num_words": 0}, "num_words"),
        ({"hidden": 0}, "hidden"),
        ({"num_chars": -1}, "num_chars"),
        ({"num_features": -1}, "num_features"),
        ({"pad_index": NUM_WORDS}, "pad_index"),
        ({"pad_index": NUM_CHARS}, "pad_index"),
        ({"char_encoder": "lstm", "char_out": 5}, "out_dim"),
    ],
)
def test_constructor_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_encoder(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"num_chars": 0}, "num_chars"), ({"kind": "rnn"}, "kind"), ({"pad_index": -1}, "pad_index")],
)
def test_char_encoder_constructor_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CharEncoder(**{"num_chars": NUM_CHARS, **kwargs})


def _bad_inputs():
    words, lengths, chars, features = make_batch([4, 2], steps=4)
    return [
        ("words rank", (words[0], lengths, chars, features), "words must have shape"),
        ("words float", (words.double(), lengths, chars, features), "words must be an integer"),
        ("words range", (words + NUM_WORDS, lengths, chars, features), r"words must lie in"),
        ("empty batch", (words[:0], lengths[:0], chars[:0], features[:0]), "words must have B"),
        ("lengths zero", (words, torch.tensor([4, 0]), chars, features), "lengths must lie in"),
        ("lengths long", (words, torch.tensor([5, 2]), chars, features), "lengths must lie in"),
        ("lengths shape", (words, lengths[:1], chars, features), "lengths must have shape"),
        ("lengths float", (words, lengths.float(), chars, features), "lengths must be an integer"),
        ("chars missing", (words, lengths, None, features), "chars"),
        ("chars shape", (words, lengths, chars[:, :3], features), "chars must have shape"),
        ("chars rank", (words, lengths, chars[..., 0], features), "chars must have shape"),
        ("chars range", (words, lengths, chars + NUM_CHARS, features), "chars must lie in"),
        ("chars holes", (words, lengths, chars.flip(-1), features), "right-padded"),
        ("features missing", (words, lengths, chars, None), "features"),
        ("features shape", (words, lengths, chars, features[:, :3]), "features must have shape"),
        ("features range", (words, lengths, chars, features - 1), "features must lie in"),
    ]


@pytest.mark.parametrize(
    ("args", "message"), [pytest.param(*case[1:], id=case[0]) for case in _bad_inputs()]
)
def test_forward_validation(args, message):
    encoder = make_encoder()
    with pytest.raises(ValueError, match=message):
        encoder(*args)


def test_chars_and_features_refused_without_their_encoders():
    encoder = make_encoder(num_chars=0, num_features=0)
    words, lengths, chars, features = make_batch([3, 2])
    with pytest.raises(ValueError, match="chars given"):
        encoder(words, lengths, chars)
    with pytest.raises(ValueError, match="features given"):
        encoder(words, lengths, features=features)
    with_chars_off = make_encoder(char_encoder=None)
    assert with_chars_off.char_encoder is None
    with pytest.raises(ValueError, match="chars given"):
        with_chars_off(words, lengths, chars, features)


def test_word_dropout_replaces_words_by_unk_in_training_only():
    encoder = make_encoder(word_dropout=0.5, unk_index=1, dropout=0.0)
    seen = []
    encoder.word_embedding.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    words, lengths, chars, features = make_batch([20, 7] * 20)
    words[words == 1] = 2  # no genuine unknown words in the input
    torch.manual_seed(0)
    encoder(words, lengths, chars, features)
    dropped = seen[-1] != words
    inside = words != 0
    assert (seen[-1][dropped] == 1).all() and not (dropped & ~inside).any()  # pads stay pads
    assert 0.4 < dropped[inside].float().mean().item() < 0.6
    encoder.eval()
    encoder(words, lengths, chars, features)
    assert torch.equal(seen[-1], words)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"word_dropout": 1.0}, "word_dropout"),
        ({"word_dropout": -0.5}, "word_dropout"),
        ({"word_dropout": 0.1, "unk_index": NUM_WORDS}, "unk_index"),
    ],
)
def test_word_dropout_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_encoder(**kwargs)

"""Speech corpora given by path: Kaldi data directories and CSV/TSV manifests, their
encodings and path conventions, and every refusal with the file and line it names."""

from __future__ import annotations

import re

import pytest

from hybrid.speech.datadir import Entry, read_kaldi_dir, read_manifest

PLAIN = {
    "wav.scp": "r1 wav/r1.wav\nr2 wav/r2.wav\nunused wav/nowhere.wav\n",
    "text": "r2 two words\nr1 one\n",
    "utt2spk": "r1 alice\nr2 bob\nunused carol\n",
}


def write(path, text, bom=False, crlf=False):
    """Write ``text`` as UTF-8, optionally with a byte-order mark and CRLF line ends."""
    data = text.replace("\n", "\r\n") if crlf else text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path


def audio(*paths):
    """Create dummy audio files (the readers never open them)."""
    for path in paths:
        write(path, "RIFF")


def kaldi_dir(tmp_path, files, **options):
    """A data directory ``tmp_path/data`` with ``files`` (name -> text) and the audio files
    ``wav/r1.wav`` and ``wav/r2.wav`` inside it."""
    folder = tmp_path / "data"
    audio(folder / "wav" / "r1.wav", folder / "wav" / "r2.wav")
    for name, text in files.items():
        write(folder / name, text, **options)
    return folder


def refused(call, location, *fragments):
    """``call()`` raises a ValueError whose message starts with ``location`` followed by
    ``": "`` (so ``text:3`` is not ``text:30``) and holds each fragment."""
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert message.startswith(f"{location}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- Kaldi data directories ---------------------------------------------------------------


def test_kaldi_dir_lists_the_text_utterances_in_order(tmp_path):
    folder = kaldi_dir(tmp_path, PLAIN)
    entries = read_kaldi_dir(folder)
    wav = folder.absolute() / "wav"
    assert entries == [
        Entry("r2", wav / "r2.wav", "bob", ("two", "words")),
        Entry("r1", wav / "r1.wav", "alice", ("one",)),
    ]
    assert [e.where for e in entries] == [f"{folder}/text:1", f"{folder}/text:2"]
    assert all(e.path.is_absolute() and e.start is None and e.end is None for e in entries)


def test_kaldi_segments_cut_recordings_and_end_minus_one_is_the_end(tmp_path):
    files = dict(
        PLAIN,
        segments="u1 r1 0 1.5\nu2 r1 1.5 -1\nu3 r2 0.25 2\n",
        text="u1 a b\nu2 c\nu3 d\n",
        utt2spk="u1 alice\nu2 alice\nu3 bob\n",
    )
    folder = kaldi_dir(tmp_path, files)
    entries = read_kaldi_dir(folder)
    assert [(e.id, e.path.name, e.speaker, e.start, e.end) for e in entries] == [
        ("u1", "r1.wav", "alice", 0.0, 1.5),
        ("u2", "r1.wav", "alice", 1.5, None),
        ("u3", "r2.wav", "bob", 0.25, 2.0),
    ]


def test_kaldi_crlf_bom_blank_lines_trailing_spaces_and_unicode(tmp_path):
    files = {
        "wav.scp": "r1   wav/r1.wav  \n\nr2\tmy wavs/r 2.wav\t\n\n",
        "text": "r1  über   日本 \n\n  \nr2 ok\n\n",
        "utt2spk": "r1 zoë\nr2 bob \n",
    }
    folder = kaldi_dir(tmp_path, files, bom=True, crlf=True)
    audio(folder / "my wavs" / "r 2.wav")
    entries = read_kaldi_dir(folder)
    assert [(e.id, e.path.name, e.speaker, e.words) for e in entries] == [
        ("r1", "r1.wav", "zoë", ("über", "日本")),
        ("r2", "r 2.wav", "bob", ("ok",)),
    ]
    assert entries[1].where == f"{folder}/text:4"


def test_kaldi_relative_paths_prefer_the_working_directory(tmp_path, monkeypatch):
    folder = kaldi_dir(tmp_path, PLAIN)
    recipe = tmp_path / "recipe"
    audio(recipe / "wav" / "r1.wav")  # r2 exists only beside the data directory
    monkeypatch.chdir(recipe)
    paths = {e.id: e.path for e in read_kaldi_dir(folder)}
    assert paths == {"r1": recipe / "wav" / "r1.wav", "r2": folder / "wav" / "r2.wav"}
    monkeypatch.chdir(tmp_path)  # entries stay valid from another working directory
    assert all(path.is_file() for path in paths.values())


def test_kaldi_absolute_paths(tmp_path):
    elsewhere = tmp_path / "elsewhere" / "x.wav"
    audio(elsewhere)
    folder = kaldi_dir(tmp_path, dict(PLAIN, **{"wav.scp": f"r1 {elsewhere}\nr2 wav/r2.wav\n"}))
    assert read_kaldi_dir(folder)[1].path == elsewhere


def test_kaldi_missing_audio_names_the_line_and_both_places(tmp_path, monkeypatch):
    folder = kaldi_dir(tmp_path, dict(PLAIN, **{"wav.scp": "r1 wav/r1.wav\nr2 wav/gone.wav\n"}))
    monkeypatch.chdir(tmp_path)
    refused(
        lambda: read_kaldi_dir(folder),
        f"{folder}/wav.scp:2",
        "'wav/gone.wav'",
        str(tmp_path / "wav" / "gone.wav"),
        str(folder / "wav" / "gone.wav"),
    )


@pytest.mark.parametrize(
    "line, kind",
    [
        ("r2 sox wav/r2.flac -t wav - |", "command"),
        ("r2 flac -c -d -s wav/r2.flac|", "command"),
        ("r2 data/wav.ark:123", "archive offset"),
    ],
)
def test_kaldi_commands_and_archives_are_refused(tmp_path, line, kind):
    folder = kaldi_dir(tmp_path, dict(PLAIN, **{"wav.scp": f"r1 wav/r1.wav\n{line}\n"}))
    refused(
        lambda: read_kaldi_dir(folder),
        f"{folder}/wav.scp:2",
        kind,
        "not run",
        "path of an audio file",
        "convert the audio to WAV",
    )


SEGMENTED = dict(
    PLAIN, segments="u1 r1 0 1\nu2 r2 0 1\n", text="u1 a\nu2 b\n", utt2spk="u1 a\nu2 b\n"
)


@pytest.mark.parametrize(
    "changes, location, fragment",
    [
        # too few (or too many) fields
        ({"wav.scp": "r1 wav/r1.wav\nr2\n"}, "wav.scp:2", "'<recording-id> <path>'"),
        ({"utt2spk": "r1 alice\n\nr2\n"}, "utt2spk:3", "'<utt-id> <speaker>'"),
        ({"utt2spk": "r1 alice\nr2 bob smith\n"}, "utt2spk:2", "'<utt-id> <speaker>'"),
        ({**SEGMENTED, "segments": "u1 r1 0\n"}, "segments:1", "<start> <end>"),
        # an id listed twice
        ({"text": "r1 a\nr2 b\nr1 c\n"}, "text:3", "'r1' is listed twice (also on line 1)"),
        ({"utt2spk": "r1 a\nr1 b\nr2 c\n"}, "utt2spk:2", "listed twice"),
        ({"wav.scp": "r1 wav/r1.wav\nr2 wav/r2.wav\nr2 x.wav\n"}, "wav.scp:3", "twice"),
        ({**SEGMENTED, "segments": "u1 r1 0 1\nu1 r2 0 1\n"}, "segments:2", "twice"),
        # an empty transcript
        ({"text": "r1 a\nr2 b\nr3\n"}, "text:3", "empty transcript"),
        ({"text": "r1 a\n\nr2   \n"}, "text:3", "empty transcript"),
        # a text utterance that other files lack
        (
            {"text": "r1 a\nr2 b\nr3 c\n", "wav.scp": PLAIN["wav.scp"] + "r3 wav/r1.wav\n"},
            "text:3",
            "utt2spk",
        ),
        ({"text": "r1 a\nr2 b\nr3 c\n", "utt2spk": "r1 a\nr2 b\nr3 c\n"}, "text:3", "wav.scp"),
        ({**SEGMENTED, "text": "u1 a\nu9 b\n", "utt2spk": "u1 a\nu9 b\n"}, "text:2", "segments"),
        # segments
        ({**SEGMENTED, "segments": "u1 r1 0 1\nu2 r9 0 1\n"}, "segments:2", "'r9' is not in"),
        ({**SEGMENTED, "segments": "u1 r1 zero 1\n"}, "segments:1", "must be numbers"),
        ({**SEGMENTED, "segments": "u1 r1 0 nan\n"}, "segments:1", "must be numbers"),
        ({**SEGMENTED, "segments": "u1 r1 -0.5 1\n"}, "segments:1", "negative"),
        ({**SEGMENTED, "segments": "u1 r1 0 1\nu2 r2 2 2\n"}, "segments:2", "not after"),
        ({**SEGMENTED, "segments": "u1 r1 3 1\n"}, "segments:1", "not after"),
        ({**SEGMENTED, "segments": "u1 r1 0 -2\n"}, "segments:1", "not after"),
    ],
)
def test_kaldi_errors_name_the_file_and_line(tmp_path, changes, location, fragment):
    folder = kaldi_dir(tmp_path, {**PLAIN, **changes})
    refused(lambda: read_kaldi_dir(folder), f"{folder}/{location}", fragment)


def test_kaldi_text_absent_from_utt2spk_names_the_text_line(tmp_path):
    folder = kaldi_dir(tmp_path, dict(PLAIN, utt2spk="r1 alice\n"))
    refused(lambda: read_kaldi_dir(folder), f"{folder}/text:1", "'r2'", "utt2spk")


@pytest.mark.parametrize("name", ["wav.scp", "text", "utt2spk"])
def test_kaldi_missing_files_name_the_folder_and_file(tmp_path, name):
    folder = kaldi_dir(tmp_path, {k: v for k, v in PLAIN.items() if k != name})
    refused(lambda: read_kaldi_dir(folder), str(folder), f"no {name};")


def test_kaldi_folder_must_be_a_directory(tmp_path):
    refused(lambda: read_kaldi_dir(tmp_path / "nowhere"), str(tmp_path / "nowhere"), "directory")
    file = write(tmp_path / "file", "")
    refused(lambda: read_kaldi_dir(file), str(file), "not a directory")


def test_kaldi_without_utterances_names_text(tmp_path):
    folder = kaldi_dir(tmp_path, dict(PLAIN, text="\n  \n"))
    refused(lambda: read_kaldi_dir(folder), f"{folder}/text", "no utterance")


# --- CSV and TSV manifests ----------------------------------------------------------------


def corpus(tmp_path, *names):
    """Dummy audio files under ``tmp_path/corpus``; returns that folder."""
    folder = tmp_path / "corpus"
    audio(*(folder / name for name in names))
    return folder


def test_csv_manifest_with_quoted_commas(tmp_path):
    folder = corpus(tmp_path, "yes/0a7c2a8d_nohash_0.wav", "b.flac")
    manifest = write(
        folder / "train.csv",
        'path,transcript,speaker\nyes/0a7c2a8d_nohash_0.wav,"yes, yes",0a7c2a8d\n\n'
        'b.flac,"a ""quoted""\nline",bob\n',
    )
    entries = read_manifest(manifest)
    assert entries == [
        Entry(
            "yes/0a7c2a8d_nohash_0",
            folder / "yes" / "0a7c2a8d_nohash_0.wav",
            "0a7c2a8d",
            ("yes,", "yes"),
        ),
        Entry("b", folder / "b.flac", "bob", ("a", '"quoted"', "line")),
    ]
    assert [e.where for e in entries] == [f"{manifest}:2", f"{manifest}:4"]


def test_tsv_manifest_keeps_quotes_and_commas(tmp_path):
    folder = corpus(tmp_path, "clips/a.mp3", "clips/b.mp3")
    manifest = write(
        folder / "dev.tsv",
        'speaker\tpath\ttranscript\ns1\tclips/a.mp3\t"Hi," she said, über 日本\n'
        "s2\tclips/b.mp3\tok\n",
        bom=True,
        crlf=True,
    )
    entries = read_manifest(manifest)
    assert [(e.id, e.speaker, e.words) for e in entries] == [
        ("clips/a", "s1", ('"Hi,"', "she", "said,", "über", "日本")),
        ("clips/b", "s2", ("ok",)),
    ]
    assert entries[1].where == f"{manifest}:3"


def test_tab_separated_header_without_commas_is_tsv(tmp_path):
    folder = corpus(tmp_path, "a.wav")
    manifest = write(folder / "list.txt", "path\ttranscript\tspeaker\na.wav\tx, y\ts\n")
    assert read_manifest(manifest)[0].words == ("x,", "y")


def test_manifest_custom_columns_and_no_speakers(tmp_path):
    folder = corpus(tmp_path, "a.wav", "sub/b.wav")
    manifest = write(folder / "m.csv", "file,label,extra\na.wav,up,1\nsub/b.wav,down,2\n")
    entries = read_manifest(
        manifest, path_column="file", transcript_column="label", speaker_column=None
    )
    assert [(e.id, e.speaker, e.words) for e in entries] == [
        ("a", "a", ("up",)),
        ("sub/b", "sub/b", ("down",)),
    ]


def test_manifest_absolute_and_relative_paths(tmp_path, monkeypatch):
    folder = corpus(tmp_path, "a.wav")
    outside = tmp_path / "other" / "c.wav"
    audio(outside)
    write(folder / "m.csv", f"path,transcript,speaker\na.wav,x,s\n{outside},y,s\n")
    monkeypatch.chdir(tmp_path)
    entries = read_manifest("corpus/m.csv")
    assert [e.path for e in entries] == [folder / "a.wav", outside]
    assert entries[1].id == "../other/c"


def test_manifest_missing_columns_are_listed_with_the_header(tmp_path):
    folder = corpus(tmp_path, "a.wav")
    manifest = write(folder / "m.csv", "file,sentence\na.wav,x\n")
    message = refused(lambda: read_manifest(manifest), str(manifest), "'file', 'sentence'")
    assert re.search(r"no column 'path', 'transcript', 'speaker'", message), message
    refused(
        lambda: read_manifest(manifest, path_column="file", transcript_column="sentence"),
        str(manifest),
        "no column 'speaker'",
    )


@pytest.mark.parametrize(
    "rows, location, fragments",
    [
        ("a.wav,x,s\nmissing.wav,y,s\n", 3, ["no audio file 'missing.wav'", "missing.wav"]),
        ("a.wav,x,s\n,y,s\n", 3, ["'path' column is empty"]),
        ('a.wav," ",s\n', 2, ["'transcript' column is empty"]),
        ("a.wav,x,\n", 2, ["'speaker' column is empty"]),
        ("a.wav,x\n", 2, ["2 fields, but the header has 3"]),
        ("a.wav,x,s\n\nb.wav,y,s\n./a.wav,z,s\n", 5, ["'a' (audio", "a.wav) is also on line 2"]),
        ('a.wav,"x"y,s\n', 2, ["not valid CSV"]),
    ],
)
def test_manifest_row_errors_name_the_file_and_line(tmp_path, rows, location, fragments):
    folder = corpus(tmp_path, "a.wav", "b.wav")
    manifest = write(folder / "m.csv", "path,transcript,speaker\n" + rows)
    refused(lambda: read_manifest(manifest), f"{manifest}:{location}", *fragments)


@pytest.mark.parametrize("text", ["", "\n\n", "path,transcript,speaker\n\n"])
def test_manifest_without_utterances_names_the_file(tmp_path, text):
    manifest = write(tmp_path / "m.csv", text)
    refused(lambda: read_manifest(manifest), str(manifest))

"""The corpus: stable file-level splits, deduplication, filters, alternatives, clear errors."""

import json

import pytest

from minillama.data.corpus import (SPLITS, CorpusError, get_corpus, load_corpus, load_jsonl,
                            split_of, stdlib_root)


def test_split_is_a_pure_function_of_the_path():
    # sha256-based: these values hold on every machine and Python version.
    assert split_of("json/__init__.py") == split_of("json/__init__.py")
    assert split_of("a/b.py") == split_of("a\\b.py".replace("\\", "/"))
    counts = {s: 0 for s in SPLITS}
    for i in range(4000):
        counts[split_of(f"pkg{i}/mod.py")] += 1
    assert 0.87 < counts["train"] / 4000 < 0.93
    assert 0.03 < counts["val"] / 4000 < 0.07 and 0.03 < counts["test"] / 4000 < 0.07


def _write(root, rel, data):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


def test_directory_filters_and_dedup(tmp_path):
    _write(tmp_path, "pkg/a.py", "x = 1\n")
    _write(tmp_path, "pkg/copy_of_a.py", "x = 1\n")  # exact duplicate: dropped
    _write(tmp_path, "pkg/b.py", "def f():\n    return 2\n")
    _write(tmp_path, "pkg/latin1.py", "s = 'caf\xe9'\n".encode("latin-1"))  # not UTF-8: skipped
    _write(tmp_path, "site-packages/c.py", "y = 3\n")
    _write(tmp_path, "pkg/tests/test_a.py", "assert True\n")
    _write(tmp_path, "pkg/notes.txt", "not python\n")
    corpus = load_corpus(tmp_path)
    assert [d.path for d in corpus.documents] == ["pkg/a.py", "pkg/b.py"]
    assert all(d.split == split_of(d.path) for d in corpus.documents)
    with_tests = load_corpus(tmp_path, skip_tests=False)
    assert "pkg/tests/test_a.py" in [d.path for d in with_tests.documents]


def test_generated_tables_and_data_modules_are_left_out(tmp_path):
    from minillama.data.corpus import is_data_table

    codec = "decoding_table = (\n" + "".join(f"    '\\x{i:02x}'     #  0x{i:02X} -> LATIN CAPITAL LETTER {i}\n"
                                              for i in range(256)) + ")\n"
    entities = "html5 = {\n" + "".join(f"    'name{i};': '\\u{i:04x}',\n" for i in range(300)) + "}\n"
    code = "".join(f"def f{i}(x):\n    y = x + {i}\n    return y * 2\n\n" for i in range(100))
    short_table = "T = {\n" + "".join(f"    {i}: 'v{i}',\n" for i in range(50)) + "}\n"
    assert is_data_table(codec) and is_data_table(entities)
    assert not is_data_table(code) and not is_data_table(short_table)  # code; a table too short to matter
    mixed = code + "ALIASES = {\n" + "".join(f"    'a{i}': 'b{i}',\n" for i in range(150)) + "}\n"
    assert not is_data_table(mixed)  # a table inside code (like locale.py's) stays
    _write(tmp_path, "enc/cp1.py", codec)
    _write(tmp_path, "html/entities.py", entities)
    _write(tmp_path, "pkg/code.py", code)
    assert [d.path for d in load_corpus(tmp_path).documents] == ["pkg/code.py"]
    from minillama.data.corpus import load_directory
    assert len(load_directory(tmp_path, skip_tables=False)) == 3


def test_the_stdlib_corpus_holds_no_codec_table():
    corpus = get_corpus("cpu")
    assert not any("LATIN CAPITAL LETTER A WITH GRAVE" in d.text for d in corpus.documents)
    assert not any("gencodec.py" in d.text[:1000] for d in corpus.documents)  # CPython's generated codecs
    assert any(d.path == "locale.py" for d in corpus.documents)  # code holding a table stays


def test_jsonl_source_and_errors(tmp_path):
    src = tmp_path / "code.jsonl"
    src.write_text(json.dumps({"text": "print(1)\n", "path": "p.py"}) + "\n\n"
                   + json.dumps({"text": "print(2)\n"}) + "\n")
    assert load_jsonl(src) == [("p.py", "print(1)\n"), ("code.jsonl:3", "print(2)\n")]
    assert len(load_corpus([src, src])) == 2  # the second copy deduplicates away
    src.write_text('{"code": "x"}\n')
    with pytest.raises(CorpusError, match="no string field 'text'"):
        load_jsonl(src)
    src.write_text("{oops\n")
    with pytest.raises(CorpusError, match="not valid JSON"):
        load_jsonl(src)
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no documents"):
        load_corpus(tmp_path / "empty")


def test_quick_stdlib_corpus():
    corpus = get_corpus("quick")
    assert len(corpus) == 60
    assert all(corpus.docs(s) for s in SPLITS)  # every split has files, even in the quick subset
    paths = [d.path for d in corpus.documents]
    assert not any("site-packages" in p or "/test/" in p for p in paths)
    assert len({d.text for d in corpus.documents}) == len(paths)  # deduplicated
    assert all((stdlib_root() / d.path).read_text(encoding="utf-8") == d.text for d in corpus.documents[:5])
    assert get_corpus("quick").fingerprint() == corpus.fingerprint()  # stable across loads
    stats = corpus.stats()
    assert stats["total"]["files"] == 60
    assert stats["total"]["chars"] == sum(stats[s]["chars"] for s in SPLITS)


def test_a_file_as_source(tmp_path):
    py = tmp_path / "one.py"
    py.write_text("def f():\n    return 1\n")
    corpus = load_corpus(py)
    assert len(corpus) == 1 and corpus.texts()[0].startswith("def f")
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(CorpusError, match="neither a .py nor a .jsonl"):
        load_corpus(other)

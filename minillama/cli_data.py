"""``python -m minillama corpus`` and ``python -m minillama tokenizer``.

Both read the profile (``--profile`` or ``$MINILLAMA_PROFILE``), like the notebooks do.
"""

from __future__ import annotations

import time


def _corpus(args) -> int:
    from minillama.data import format_stats, get_corpus, load_corpus
    from minillama.profiles import get_profile

    profile = get_profile(args.profile)
    t0 = time.perf_counter()
    if args.source:
        corpus = load_corpus(args.source, max_files=profile.max_corpus_files)
    else:
        corpus = get_corpus(profile)
    print(f"profile {profile.name}: loaded {len(corpus)} files in {time.perf_counter() - t0:.1f}s")
    tok = None
    if args.tokens:
        from minillama.tokenizer import get_tokenizer
        tok = get_tokenizer(profile, None if args.source else corpus, verbose=True)
    print(format_stats(corpus.stats(tok)))
    return 0


def _tokenizer(args) -> int:
    from minillama.data import format_stats, get_corpus
    from minillama.profiles import get_profile
    from minillama.tokenizer import get_tokenizer

    profile = get_profile(args.profile)
    corpus = get_corpus(profile)
    t0 = time.perf_counter()
    tok = get_tokenizer(profile, corpus, verbose=True)
    print(f"{tok!r} ready in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    stats = corpus.stats(tok)
    print(f"encoded {stats['total']['chars']:,} chars in {time.perf_counter() - t0:.1f}s")
    print(format_stats(stats))
    print("special ids: " + ", ".join(f"{name}={getattr(tok, name + '_id')}"
                                      for name in ("bos", "eos", "prefix", "suffix", "middle", "eot")))
    if args.show:
        ids = tok.encode(args.show)
        print(" ".join(f"{tok.id_to_piece(i)}|{i}" for i in ids))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("corpus", help="load the code corpus for the profile and print its statistics")
    p.add_argument("--profile", help="quick, cpu or gpu (default: $MINILLAMA_PROFILE or cpu)")
    p.add_argument("--source", nargs="+", help="directories of .py files or .jsonl files instead of the stdlib")
    p.add_argument("--tokens", action="store_true", help="also count tokens (trains/loads the tokenizer)")
    p.set_defaults(func=_corpus)
    p = sub.add_parser("tokenizer", help="train (or load the cached) tokenizer for the profile and print stats")
    p.add_argument("--profile", help="quick, cpu or gpu (default: $MINILLAMA_PROFILE or cpu)")
    p.add_argument("--show", metavar="TEXT", help="print the pieces of TEXT")
    p.set_defaults(func=_tokenizer)

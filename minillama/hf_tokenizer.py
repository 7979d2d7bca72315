"""The course's tokenizer as a transformers tokenizer: what :func:`minillama.hf.save_pretrained`
writes beside the weights so that ``AutoTokenizer.from_pretrained(folder)`` gives minillama's ids.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

# Measured with transformers 5.24 (tests/test_interop.py keeps it true):
# * ``tokenizer.model`` alone needs the ``protobuf`` package to be read by transformers (without
#   it AutoTokenizer fails), and then gives minillama's ids only when tokenizer_config.json names
#   no ``tokenizer_class`` (its generic SentencePiece path); ``LlamaTokenizer`` and
#   ``CodeLlamaTokenizer`` rebuild the pipeline their own way and drop a space from text that
#   starts with two spaces ("  x"), as does ``legacy: false``.
# * So we also write ``tokenizer.json``: the same pipeline transformers' generic path builds
#   (``SpmConverter.build_tokenizer_from_spm_proto``, legacy), written here from the model file.
#   transformers then needs neither protobuf nor sentencepiece. (Merges are written as pairs,
#   the form of tokenizers >= 0.20, which transformers >= 4.45 requires; only 5.24 is tested.)

# * tokenizer.json has the shape of Code Llama's own (codellama/CodeLlama-7b-hf): normalizer Prepend("▁")
#   then Replace(" " -> "▁"), no pre-tokenizer (ours splits out its user-defined pieces, which Code Llama
#   has none of), decoder Replace("▁" -> " "), ByteFallback, Fuse, Strip(1 leading space).
# * That Strip is what makes decode(encode(text)) == text: encoding adds a dummy "▁" in front, decoding
#   takes it off. transformers applies it to whatever ids it decodes, so text that *continues* other text
#   loses one leading space: pipeline("text-generation", return_full_text=False) in transformers 5 decodes
#   the new ids alone ('   return 21' for '    return 21'), and so does tokenizer.decode of an infilled
#   middle. Code Llama's tokenizer does the same in transformers (CodeLlamaTokenizer builds this very
#   decoder); no decoder can do both, since "   x" encoded and "    x" continued are the same ids.
#   Meta's code decodes infills with a leading piece it then drops (minillama: Tokenizer.decode_infilling);
#   :func:`decode_continuation` does that with a transformers tokenizer.

# what transformers reads as a tokenizer (convert copies them from an HF folder)
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json")
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6  # SentencePiece piece types


def _proto_fields(data: bytes) -> dict[int, list]:
    """One level of a protobuf message, field number -> values (ints, floats or bytes).

    Enough of the wire format to read a SentencePiece model without the protobuf package."""
    out: dict[int, list] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        value = shift = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    while i < len(data):
        key = varint()
        wire = key & 7
        if wire == 0:
            value = varint()
        elif wire == 1:
            value, i = struct.unpack_from("<d", data, i)[0], i + 8
        elif wire == 2:
            n = varint()
            value, i = data[i:i + n], i + n
        elif wire == 5:
            value, i = struct.unpack_from("<f", data, i)[0], i + 4
        else:
            raise ValueError(f"not a SentencePiece model: protobuf wire type {wire}")
        out.setdefault(key >> 3, []).append(value)
    return out


def spm_settings(model_proto: bytes) -> dict:
    """The pieces ``[(piece, score, type)]`` and the settings of a SentencePiece model that
    decide how it encodes (field numbers from sentencepiece_model.proto; absent = default)."""
    top = _proto_fields(model_proto)
    trainer = _proto_fields(top[2][0]) if 2 in top else {}
    norm = _proto_fields(top[3][0]) if 3 in top else {}

    def get(fields, num, default):
        return fields[num][-1] if num in fields else default

    pieces = []
    for raw in top.get(1, []):
        f = _proto_fields(raw)
        pieces.append((get(f, 1, b"").decode("utf-8"), get(f, 2, 0.0), get(f, 3, _NORMAL)))
    return {"pieces": pieces, "model_type": get(trainer, 3, 1), "byte_fallback": bool(get(trainer, 35, 0)),
            "unk_piece": get(trainer, 45, b"<unk>").decode(), "precompiled_charsmap": get(norm, 2, b""),
            "add_dummy_prefix": bool(get(norm, 3, 1)), "remove_extra_whitespaces": bool(get(norm, 4, 1)),
            "escape_whitespaces": bool(get(norm, 5, 1))}


def tokenizer_json(tokenizer) -> dict:
    """A ``tokenizers`` pipeline (``tokenizer.json``) that encodes and decodes like the
    SentencePiece BPE model of ``tokenizer``, with BOS added as minillama's ``encode(bos=True)``."""
    import base64

    s = spm_settings(tokenizer.sp.serialized_model_proto())
    if s["model_type"] != 2:
        raise ValueError("tokenizer.json is written for SentencePiece BPE models only (Llama, Code Llama, minillama)")
    pieces = s["pieces"]
    vocab = {piece: i for i, (piece, _, _) in enumerate(pieces)}
    # SentencePiece BPE merges the adjacent pair whose joined piece scores highest: the same
    # order as merges ranked by that piece's score (ties by id), among normal pieces only
    normal = {p: (score, i) for i, (p, score, kind) in enumerate(pieces) if kind == _NORMAL}
    ranked = sorted((-score, i, p[:k], p[k:]) for p, (score, i) in normal.items()
                    for k in range(1, len(p)) if p[:k] in normal and p[k:] in normal)
    user_defined = [p for p, _, kind in pieces if kind == _USER_DEFINED]
    added = [{"id": i, "content": p, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, (p, _, kind) in enumerate(pieces) if kind in (_UNKNOWN, _CONTROL)]

    normalizers = []
    if s["precompiled_charsmap"]:
        normalizers.append({"type": "Precompiled",
                            "precompiled_charsmap": base64.b64encode(s["precompiled_charsmap"]).decode()})
    if s["remove_extra_whitespaces"]:
        normalizers += [{"type": "Replace", "pattern": {"Regex": r"\A +| +\z"}, "content": ""},
                        {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]
    if s["add_dummy_prefix"]:  # Code Llama's tokenizer.json: Prepend, then Replace, no pre-tokenizer
        normalizers.append({"type": "Prepend", "prepend": "▁"})
    if s["escape_whitespaces"]:
        normalizers.append({"type": "Replace", "pattern": {"String": " "}, "content": "▁"})
    pre = []
    if user_defined:  # SentencePiece emits a user-defined piece whole, never merged
        pattern = "|".join(re.escape(p) for p in sorted(user_defined, key=len, reverse=True))
        pre.append({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False})
    decoders = [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}]
    if s["byte_fallback"]:
        decoders.append({"type": "ByteFallback"})
    decoders.append({"type": "Fuse"})
    if s["add_dummy_prefix"]:
        decoders.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    bos = tokenizer.id_to_piece(tokenizer.bos_id)
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": pre} if pre else None,
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {bos: {"id": bos, "ids": [tokenizer.bos_id], "tokens": [bos]}}},
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {"type": "BPE", "dropout": None, "unk_token": s["unk_piece"], "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": s["byte_fallback"],
                  "ignore_merges": bool(user_defined), "vocab": vocab, "merges": [[a, b] for *_, a, b in ranked]},
    }


def save_tokenizer(tokenizer, directory: str | Path, model_max_length: int | None = None) -> Path:
    """Write ``tokenizer.model`` (SentencePiece, what minillama reads), ``tokenizer.json`` and
    ``tokenizer_config.json`` so that ``AutoTokenizer.from_pretrained(directory)`` encodes as
    ``tokenizer.encode(text, bos=True)`` and decodes as ``tokenizer.decode`` (special ids
    aside: pass ``skip_special_tokens=True``); the FIM pieces keep their ids."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tokenizer.model").write_bytes(tokenizer.sp.serialized_model_proto())
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer_json(tokenizer), ensure_ascii=False, indent=1))
    piece = tokenizer.id_to_piece
    special = sorted(i for i in tokenizer.special_ids if i not in (tokenizer.bos_id, tokenizer.eos_id))
    config = {  # no tokenizer_class: transformers then uses tokenizer.json as written (see above)
        "add_bos_token": True, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "bos_token": piece(tokenizer.bos_id), "eos_token": piece(tokenizer.eos_id), "unk_token": piece(tokenizer.sp.unk_id()),
        "pad_token": None, "additional_special_tokens": [piece(i) for i in special],
        "model_max_length": model_max_length or int(1e30), "legacy": True,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n")
    return directory


def decode_continuation(hf_tokenizer, ids, skip_special_tokens: bool = True) -> str:
    """Decode ids that continue a text (generated tokens, an infilled middle) with a transformers
    tokenizer of a SentencePiece model, keeping their leading space: a newline byte piece goes in
    front (its decoding starts with no space, so the decoder's Strip removes nothing) and is cut off
    again, as Meta's ``decode_infilling`` does with SentencePiece."""
    anchor = hf_tokenizer.convert_tokens_to_ids("<0x0A>")
    if anchor is None or anchor == hf_tokenizer.unk_token_id:
        raise ValueError("the tokenizer has no <0x0A> byte piece (not a byte-fallback SentencePiece model); decode "
                         "the prompt and the continuation together and cut the prompt's text off instead")
    text = hf_tokenizer.decode([anchor, *ids], skip_special_tokens=skip_special_tokens)
    if not text.startswith("\n"):
        raise ValueError(f"the tokenizer decodes <0x0A> as {text[:1]!r}, not a newline")
    return text[1:]

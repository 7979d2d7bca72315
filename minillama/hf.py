"""Checkpoint interop: transformers (HF) folders and Meta's original checkpoints.

- :func:`save_pretrained` writes ``config.json`` + ``model.safetensors`` that
  ``transformers.LlamaForCausalLM.from_pretrained`` loads with the same logits, and with
  ``tokenizer=`` a tokenizer that ``transformers.AutoTokenizer`` loads with the same ids
  (:func:`save_tokenizer`).
- :func:`from_pretrained` loads any HF Llama folder into minillama (safetensors or
  ``pytorch_model*.bin``, single or sharded), or a minillama training run directory.
- :func:`load_meta` loads Meta's ``params.json`` + ``consolidated.*.pth``.

minillama uses HF's half-split RoPE pairing, so HF weights are a plain rename. Meta pairs
channels (2i, 2i+1); their ``wq``/``wk`` rows are permuted here, per head. Forgetting this
permutation gives a model whose text degrades after a few dozen tokens (positions 0 and 1
still look fine, which is why the bug survives casual checks).
"""

from __future__ import annotations

import json
import math
import os
import pickle
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from minillama.hf_tokenizer import TOKENIZER_FILES, save_tokenizer  # noqa: F401  (re-exported)
from minillama.model import ModelConfig, Transformer
from minillama.rope import RopeScaling

# minillama name -> HF name, per layer (gate = w1, up = w3, down = w2)
_LAYER_NAMES = {
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
_TOP_NAMES = {"tok_embeddings.weight": "model.embed_tokens.weight", "norm.weight": "model.norm.weight",
              "output.weight": "lm_head.weight"}


def _param_names(cfg: ModelConfig) -> list[str]:
    with torch.device("meta"):  # shapes only, no memory
        return list(Transformer(cfg).state_dict())


def to_hf_name(name: str) -> str:
    if name in _TOP_NAMES:
        return _TOP_NAMES[name]
    _, i, rest = name.split(".", 2)  # layers.{i}.{rest}
    return f"model.layers.{i}.{_LAYER_NAMES[rest]}"


def hf_config_dict(cfg: ModelConfig) -> dict:
    """A LlamaConfig as a dict, readable by transformers 4.x (rope_theta/rope_scaling) and
    5.x (rope_parameters)."""
    theta, rope = cfg.rope_theta, {"rope_type": "default"}
    max_pos = cfg.max_seq_len
    s = cfg.rope_scaling
    if s is not None:
        if s.type == "linear":
            rope = {"rope_type": "linear", "factor": s.factor}
        elif s.type == "ntk":
            # transformers has no static NTK rule; it is exactly a larger θ
            theta = cfg.rope_theta * s.factor ** (cfg.head_dim / (cfg.head_dim - 2))
        elif s.type == "dynamic":
            rope = {"rope_type": "dynamic", "factor": s.factor}
            max_pos = s.original_max_seq_len  # transformers reads the original length from here
        elif s.type == "yarn":
            rope = {"rope_type": "yarn", "factor": s.factor, "original_max_position_embeddings": s.original_max_seq_len,
                    "beta_fast": s.beta_fast, "beta_slow": s.beta_slow}
    legacy_scaling = None if rope["rope_type"] == "default" else {**rope, "type": rope["rope_type"]}
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.dim, "intermediate_size": cfg.ffn_dim,
        "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads, "head_dim": cfg.head_dim, "hidden_act": "silu",
        "max_position_embeddings": max_pos, "rms_norm_eps": cfg.norm_eps,
        "rope_theta": theta, "rope_scaling": legacy_scaling, "rope_parameters": {**rope, "rope_theta": theta},
        "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
    }


def _readable(path: Path) -> None:
    """Give ``path`` the mode a new file gets from ``open`` (0644 under the usual umask 022):
    safetensors creates its file with 0600, which other users of a shared model folder cannot read."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def save_pretrained(model: Transformer, directory: str | Path, tokenizer=None) -> Path:
    """Write an HF Llama folder (``config.json`` + ``model.safetensors``), and with
    ``tokenizer`` (a :class:`minillama.tokenizer.Tokenizer`) its files too (:func:`save_tokenizer`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if tokenizer is not None:
        tokenizer.check_compatible(model.cfg.vocab_size)
    tensors = {to_hf_name(k): v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = directory / "model.safetensors"
    save_file(tensors, str(weights), metadata={"format": "pt"})
    _readable(weights)
    config = hf_config_dict(model.cfg)
    dtypes = {t.dtype for t in tensors.values() if t.is_floating_point()}
    if len(dtypes) == 1:  # what the file holds, so that transformers' dtype="auto" loads it as stored
        config["torch_dtype"] = str(dtypes.pop()).removeprefix("torch.")
    if tokenizer is not None:
        config.update(bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id)
        save_tokenizer(tokenizer, directory, model_max_length=model.cfg.max_seq_len)
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    return directory


def _ffn_fields(dim: int, intermediate: int) -> dict:
    """multiple_of / ffn_dim_multiplier that reproduce an HF intermediate_size exactly."""
    hidden = int(2 * 4 * dim / 3)
    for multiple_of in (256, 128, 64, 32, 16, 8, 4, 2, 1):
        if multiple_of * math.ceil(hidden / multiple_of) == intermediate:
            return {"multiple_of": multiple_of, "ffn_dim_multiplier": None}
    multiplier = min(1.0, intermediate / hidden)
    return {"multiple_of": intermediate, "ffn_dim_multiplier": multiplier}


def config_from_hf(hf: dict) -> ModelConfig:
    if hf.get("model_type", "llama") not in ("llama", "code_llama"):
        raise ValueError(f"model_type {hf.get('model_type')!r} is not a Llama model")
    rope = hf.get("rope_parameters") or {}
    theta = rope.get("rope_theta", hf.get("rope_theta", 10_000.0))
    scaling_dict = hf.get("rope_scaling") or (rope if rope.get("rope_type", "default") != "default" else None)
    scaling, max_pos = None, hf.get("max_position_embeddings", 2048)
    if scaling_dict:
        kind = scaling_dict.get("rope_type", scaling_dict.get("type"))
        factor = scaling_dict.get("factor")
        if kind == "linear":
            scaling = RopeScaling("linear", factor)
        elif kind == "dynamic":
            scaling = RopeScaling("dynamic", factor, original_max_seq_len=max_pos)
        elif kind == "yarn":
            scaling = RopeScaling("yarn", factor, scaling_dict.get("original_max_position_embeddings", max_pos),
                                  scaling_dict.get("beta_fast") or 32.0, scaling_dict.get("beta_slow") or 1.0)
        elif kind != "default":
            raise ValueError(f"rope scaling {kind!r} is not supported by minillama "
                             "(supported: default, linear, dynamic, yarn)")
    dim = hf["hidden_size"]
    return ModelConfig(
        dim=dim, n_layers=hf["num_hidden_layers"], n_heads=hf["num_attention_heads"],
        n_kv_heads=hf.get("num_key_value_heads") or hf["num_attention_heads"], vocab_size=hf["vocab_size"],
        norm_eps=hf.get("rms_norm_eps", 1e-5), rope_theta=float(theta), rope_scaling=scaling,
        max_seq_len=max_pos, **_ffn_fields(dim, hf["intermediate_size"]))


def load_state_checked(model: Transformer, state: dict[str, torch.Tensor], source: str) -> Transformer:
    """Copy ``state`` into ``model``, naming any tensor that is missing, extra or misshapen."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ValueError(f"{source}: checkpoint does not match the model: missing {missing[:5]}"
                         f"{'…' if len(missing) > 5 else ''}, unexpected {extra[:5]}{'…' if len(extra) > 5 else ''}")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise ValueError(f"{source}: tensor {name!r} has shape {tuple(tensor.shape)} in the checkpoint "
                             f"but {tuple(expected[name].shape)} in the model; the config does not match "
                             "these weights")
    model.load_state_dict(state)
    return model


def read_json(path: Path, needed: tuple[str, ...] = ()) -> dict:
    """A JSON config file, or an error that names the file and what is wrong with it."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}): the file is damaged; "
                         f"copy it again from where the model came from") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} cannot be read: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}, not an object of settings")
    missing = [k for k in needed if k not in data]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(repr(k) for k in missing)}: it is not a complete Llama "
                         f"config (an HF config.json names hidden_size, num_hidden_layers, "
                         f"num_attention_heads, intermediate_size and vocab_size)")
    return data


HF_CONFIG_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
META_PARAMS_KEYS = ("dim", "n_layers", "n_heads")


def _checkpoint_folder(directory: Path, config_name: str, weights_glob: str, kind: str) -> tuple[dict, list[Path]]:
    """The parsed config file and the weight files of a checkpoint folder, or a clear error."""
    config_path = directory / config_name
    if not config_path.exists():
        raise FileNotFoundError(f"{directory} has no {config_name}; is it {kind} folder?")
    files = sorted(directory.glob(weights_glob))
    if not files:
        raise FileNotFoundError(f"{directory} has no {weights_glob} weights")
    return read_json(config_path, META_PARAMS_KEYS if config_name == "params.json" else ()), files


def _model_with_state(cfg: ModelConfig, state: dict[str, torch.Tensor], device, dtype, source: str) -> Transformer:
    """Build the model without allocating random weights, then copy ``state`` in (checked);
    ``dtype=None`` keeps the dtype the weights are stored in."""
    if dtype is None:
        stored = {t.dtype for t in state.values() if t.is_floating_point()}
        dtype = stored.pop() if len(stored) == 1 else torch.float32
    with torch.device("meta"):
        model = Transformer(cfg)
    model = model.to_empty(device=device).to(dtype)
    state = {k: v.to(device=device, dtype=dtype) for k, v in state.items()}
    return load_state_checked(model, state, source).eval()


def is_run_dir(directory: str | Path) -> bool:
    """A minillama training run directory: ``ckpt.pt`` (or ``ckpt.prev.pt``) and the run's
    ``config.json`` (written by :func:`minillama.training.trainer.train`), not an HF config."""
    directory = Path(directory)
    if not ((directory / "ckpt.pt").is_file() or (directory / "ckpt.prev.pt").is_file()):
        return False
    try:
        config = read_json(directory / "config.json")
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "model" in config and "train" in config


def _hf_weight_files(directory: Path) -> list[Path]:
    """The weight files of an HF folder: safetensors if there are any, else ``pytorch_model*.bin``
    (the older layout); a shard index, when present, names the shards."""
    for index_name, pattern in (("model.safetensors.index.json", "*.safetensors"),
                                ("pytorch_model.bin.index.json", "pytorch_model*.bin")):
        index = directory / index_name
        if index.is_file():
            names = sorted(set(read_json(index, ("weight_map",))["weight_map"].values()))
            missing = [n for n in names if not (directory / n).is_file()]
            if missing:
                raise FileNotFoundError(f"{directory}: {index_name} names shards that are missing: {missing[:3]}")
            return [directory / n for n in names]
        files = sorted(directory.glob(pattern))
        if files:
            return files
    raise FileNotFoundError(f"{directory} has no weights (*.safetensors or pytorch_model*.bin)")


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except Exception as e:  # SafetensorError: truncated or damaged file
            raise ValueError(f"{path} cannot be read as safetensors ({str(e).splitlines()[0][:160]}): the file is "
                             f"truncated or damaged; copy it again") from None
    # weights_only: a .bin is a pickle, and a crafted one would run code on a plain torch.load
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} holds objects other than tensors; minillama refuses to load it, since "
                         f"loading it could run code ({str(e).splitlines()[0][:200]})") from None
    except (RuntimeError, EOFError) as e:
        raise ValueError(f"{path} cannot be read ({str(e).splitlines()[0][:160]}): the file is truncated or "
                         f"damaged; copy it again") from None


def from_pretrained(directory: str | Path, device: str | torch.device = "cpu",
                    dtype: torch.dtype | None = torch.float32) -> Transformer:
    """Load an HF Llama folder (safetensors or ``pytorch_model*.bin``, single file or sharded)
    or a minillama training run directory (:func:`is_run_dir`) into minillama, in ``dtype``
    (None: as stored, e.g. fp16 for the shipped models)."""
    directory = Path(directory)
    if is_run_dir(directory):
        return _from_run_dir(directory, device, dtype)
    config_path = directory / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{directory} has no config.json; is it an HF model folder or a minillama "
                                f"training run directory (ckpt.pt + config.json)?")
    cfg = config_from_hf(read_json(config_path, HF_CONFIG_KEYS))
    hf_state: dict[str, torch.Tensor] = {}
    for f in _hf_weight_files(directory):
        hf_state.update(_read_weights(f))
    hf_state = {k: v for k, v in hf_state.items() if not k.endswith("rotary_emb.inv_freq")}
    if "lm_head.weight" not in hf_state and "model.embed_tokens.weight" in hf_state:
        hf_state["lm_head.weight"] = hf_state["model.embed_tokens.weight"]  # tied-embedding checkpoints
    from_hf = {to_hf_name(k): k for k in _param_names(cfg)}
    state = {from_hf.get(k, k): v for k, v in hf_state.items()}  # unknown names stay, and are reported
    return _model_with_state(cfg, state, device, dtype, str(directory))


def _from_run_dir(directory: Path, device, dtype) -> Transformer:
    from minillama.training.checkpoint import load_checkpoint

    # fallback=False: reading a run never moves its files (the trainer's recovery does that)
    state = load_checkpoint(directory, map_location="cpu", fallback=False)
    cfg = ModelConfig.from_dict(state["identity"]["model"])
    return _model_with_state(cfg, state["model"], device, dtype, str(directory))


def load_tokenizer(directory: str | Path, require_fim: bool = False):
    """The tokenizer saved with a model: ``tokenizer.model`` in an HF folder (:func:`save_tokenizer`)
    or in a training run directory (``pretrain`` copies it there); checked against the run's record."""
    from minillama.data.pipeline import tokenizer_fingerprint
    from minillama.tokenizer import Tokenizer

    directory = Path(directory)
    path = directory / "tokenizer.model"
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no tokenizer.model; pass the tokenizer explicitly (--tokenizer "
                                f"PATH), or save the model with save_pretrained(model, dir, tokenizer=tok)")
    tok = Tokenizer(path, require_fim=require_fim)
    if is_run_dir(directory):
        recorded = read_json(directory / "config.json").get("tokenizer")
        if recorded is not None and recorded != tokenizer_fingerprint(tok):
            raise ValueError(f"{path} is not the tokenizer this run was trained with (fingerprint "
                             f"{tokenizer_fingerprint(tok)}, the run recorded {recorded})")
    return tok


# --- Meta checkpoints -------------------------------------------------------------------

# dim along which model-parallel shards are concatenated; anything else is replicated
_SHARD_DIM = {"wq": 0, "wk": 0, "wv": 0, "w1": 0, "w3": 0, "output": 0, "wo": 1, "w2": 1, "tok_embeddings": 1}


def interleaved_to_half(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder the rows of a Meta wq/wk so pairs (2i, 2i+1) become (i, i + head_dim/2)."""
    rows, cols = w.shape
    hd = rows // n_heads
    return w.view(n_heads, hd // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def half_to_interleaved(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    rows, cols = w.shape
    hd = rows // n_heads
    return w.view(n_heads, 2, hd // 2, cols).transpose(1, 2).reshape(rows, cols)


def _merge_shards(shards: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    if len(shards) == 1:
        return dict(shards[0])
    merged = {}
    for name in shards[0]:
        kind = name.split(".")[-2]  # e.g. layers.0.attention.wq.weight -> wq
        if kind in _SHARD_DIM:
            merged[name] = torch.cat([s[name] for s in shards], dim=_SHARD_DIM[kind])
        else:
            merged[name] = shards[0][name]  # norms are replicated on every shard
    return merged


def load_meta(directory: str | Path, device: str | torch.device = "cpu",
              dtype: torch.dtype | None = torch.float32) -> Transformer:
    """Load Meta's ``params.json`` + ``consolidated.NN.pth`` (one file per model-parallel rank)."""
    directory = Path(directory)
    params, files = _checkpoint_folder(directory, "params.json", "consolidated.*.pth", "a Meta checkpoint")
    shards = [_read_weights(f) for f in files]
    state = _merge_shards(shards)
    state.pop("rope.freqs", None)  # older checkpoints store the frequencies; we recompute them

    vocab = params.get("vocab_size", -1)
    if vocab is None or vocab <= 0:  # Llama 2's params.json says -1: the tokenizer decides
        vocab = state["tok_embeddings.weight"].shape[0]
    cfg = ModelConfig(dim=params["dim"], n_layers=params["n_layers"], n_heads=params["n_heads"],
                      n_kv_heads=params.get("n_kv_heads"), vocab_size=vocab,
                      multiple_of=params.get("multiple_of", 256), ffn_dim_multiplier=params.get("ffn_dim_multiplier"),
                      norm_eps=params.get("norm_eps", 1e-5), rope_theta=float(params.get("rope_theta", 10_000.0)),
                      max_seq_len=params.get("max_seq_len", 16384))
    for name in list(state):
        if name.endswith("attention.wq.weight"):
            state[name] = interleaved_to_half(state[name], cfg.n_heads)
        elif name.endswith("attention.wk.weight"):
            state[name] = interleaved_to_half(state[name], cfg.n_kv_heads)
    return _model_with_state(cfg, state, device, dtype, str(directory))


def save_meta(model: Transformer, directory: str | Path, n_shards: int = 1) -> Path:
    """Write a checkpoint in Meta's layout (interleaved RoPE rows, model-parallel shards).

    Used by the tests to check :func:`load_meta` without downloading anything, and by
    anyone who wants to run minillama's weights in Meta's reference code.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    for name in state:
        if name.endswith("attention.wq.weight"):
            state[name] = half_to_interleaved(state[name], cfg.n_heads)
        elif name.endswith("attention.wk.weight"):
            state[name] = half_to_interleaved(state[name], cfg.n_kv_heads)
    for rank in range(n_shards):
        shard = {}
        for name, t in state.items():
            kind = name.split(".")[-2]
            if kind in _SHARD_DIM:
                shard[name] = t.chunk(n_shards, dim=_SHARD_DIM[kind])[rank].clone()
            else:
                shard[name] = t
        torch.save(shard, directory / f"consolidated.{rank:02d}.pth")
    params = {"dim": cfg.dim, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "n_kv_heads": cfg.n_kv_heads,
              "vocab_size": cfg.vocab_size, "multiple_of": cfg.multiple_of, "ffn_dim_multiplier": cfg.ffn_dim_multiplier,
              "norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta}
    (directory / "params.json").write_text(json.dumps(params, indent=2))
    return directory

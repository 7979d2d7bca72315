"""The trainer: schedule, decay groups, accumulation, exact resume, DDP, FSDP, checkpoint faults."""

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from minillama.model import ModelConfig
from minillama.data.pipeline import PackedData
from minillama.training.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from minillama.training.schedule import param_groups
from minillama.training.trainer import TrainConfig, lr_at, read_metrics, train

REPO = Path(__file__).resolve().parent.parent
MODEL = dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=64, multiple_of=16, max_seq_len=64)


def model_cfg(**kw):
    return ModelConfig(**{**MODEL, **kw})


def synthetic(n_rows=48, seq_len=16, seed=0) -> PackedData:
    """Counting sequences with random starts and strides: learnable, so losses move."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 64, (n_rows, 1))
    stride = rng.integers(1, 4, (n_rows, 1))
    return PackedData.from_array((start + stride * np.arange(seq_len + 1)) % 64)


def cfg(**kw):
    base = dict(steps=6, batch_size=8, lr=1e-2, warmup=2, eval_interval=0, eval_batches=1, progress=False)
    return TrainConfig(**{**base, **kw})


def losses(history):
    return [h["loss"] for h in history if "loss" in h]


def test_schedule_shape():
    c = TrainConfig(steps=1000, lr=3e-4, warmup=100)
    lrs = np.array([lr_at(s, c) for s in range(c.steps)])
    assert np.all(np.diff(lrs[:100]) > 0) and lrs[99] == pytest.approx(3e-4)  # linear warm-up to peak
    assert np.all(np.diff(lrs[100:]) <= 0)  # then never increases
    assert lrs[-1] == pytest.approx(3e-4 / 30, rel=1e-3)  # ends at peak/30 (PAPER §2.6)
    assert lr_at(5000, c) == pytest.approx(3e-4 / 30)  # and stays there past the end
    mid = 100 + 450
    assert lrs[mid] == pytest.approx((3e-4 + 1e-5) / 2, rel=1e-2)  # cosine: halfway at the midpoint


def test_weight_decay_groups():
    from minillama.model import Transformer
    model = Transformer(model_cfg())
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith("norm.weight") for p in no_decay["params"])
    assert {names[id(p)] for p in decay["params"]} >= {"tok_embeddings.weight", "output.weight",
                                                        "layers.0.attention.wq.weight"}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_grad_accumulation_equals_bigger_batch():
    data = synthetic()
    one = train(cfg(steps=3, batch_size=8, grad_accum=1), model_cfg(), data)
    four = train(cfg(steps=3, batch_size=8, grad_accum=4), model_cfg(), data)
    np.testing.assert_allclose(losses(one.history), losses(four.history), rtol=1e-5)
    for a, b in zip(one.model.parameters(), four.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_validation_and_metrics_log(tmp_path):
    res = train(cfg(steps=4, eval_interval=2, out_dir=str(tmp_path)), model_cfg(), synthetic(),
                {"val_l2r": synthetic(16, seed=1)})
    train_rows, evals = read_metrics(tmp_path)
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4] and [e["step"] for e in evals] == [2, 4]
    assert all(np.isfinite(e["val_l2r_loss"]) for e in evals)
    assert len(res.history) == 6


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from tests.test_trainer import cfg, model_cfg, synthetic
    from minillama.training.trainer import train

    def crash(step, record):
        if step == 5:  # after the step-4 checkpoint: steps 5.. are lost and must be redone
            os.kill(os.getpid(), signal.SIGKILL)

    train(cfg(steps=8, checkpoint_interval=2, out_dir={out!r}), model_cfg(), synthetic(), callback=crash)
""")


def test_kill_and_resume_gives_the_same_run(tmp_path):
    reference = train(cfg(steps=8), model_cfg(), synthetic())
    out = tmp_path / "run"
    script = KILL_SCRIPT.format(repo=str(REPO), out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr  # SIGKILL: no cleanup ran
    assert load_checkpoint(out)["step"] == 4
    resumed = train(cfg(steps=8, checkpoint_interval=2, out_dir=str(out)), model_cfg(), synthetic())
    assert [h["step"] for h in resumed.history] == list(range(1, 9))  # the log has no duplicates
    np.testing.assert_allclose(losses(resumed.history), losses(reference.history), rtol=1e-5, atol=1e-6)
    for a, b in zip(resumed.model.parameters(), reference.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_truncated_or_corrupted_checkpoint_falls_back_to_previous(tmp_path):
    def crash(step, record):  # an injected crash right after the step-4 checkpoint
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg(steps=6, checkpoint_interval=2, out_dir=str(tmp_path)), model_cfg(), synthetic(), callback=crash)
    latest, prev = tmp_path / "ckpt.pt", tmp_path / "ckpt.prev.pt"
    assert read_checkpoint(prev)["step"] == 2 and read_checkpoint(latest)["step"] == 4

    blob = latest.read_bytes()
    latest.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(latest)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF  # inside the tensor data: the file still opens
    latest.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupted"):
        read_checkpoint(latest)

    with pytest.warns(UserWarning, match="previous checkpoint"):
        state = load_checkpoint(tmp_path)
    assert state["step"] == 2 and prev.exists() and (tmp_path / "ckpt.bad.pt").exists()
    # resuming continues from step 2; the next save must not rotate the bad file over the good one
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = train(cfg(steps=6, checkpoint_interval=2, out_dir=str(tmp_path)), model_cfg(), synthetic())
    assert res.history[-1]["step"] == 6 and read_checkpoint(prev)["step"] == 4


def test_no_good_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path, fallback=False)
    with pytest.raises(CheckpointError, match="no usable checkpoint"), pytest.warns(UserWarning, match="no previous"):
        load_checkpoint(tmp_path)


def test_checkpoint_from_another_config_or_tokenizer_is_refused(tmp_path):
    train(cfg(steps=2, out_dir=str(tmp_path)), model_cfg(), synthetic(), tokenizer_hash="aaaa")
    with pytest.raises(CheckpointError, match=r"model\.dim: checkpoint 32, this run 64"):
        train(cfg(steps=2, out_dir=str(tmp_path)), model_cfg(dim=64), synthetic(), tokenizer_hash="aaaa")
    with pytest.raises(CheckpointError, match=r"tokenizer: checkpoint 'aaaa', this run 'bbbb'"):
        train(cfg(steps=2, out_dir=str(tmp_path)), model_cfg(), synthetic(), tokenizer_hash="bbbb")
    with pytest.raises(CheckpointError, match=r"train\.lr"):
        train(cfg(steps=2, lr=1e-3, out_dir=str(tmp_path)), model_cfg(), synthetic(), tokenizer_hash="aaaa")
    with pytest.raises(CheckpointError, match=r"train\.steps: checkpoint 2, this run 3"):  # another schedule
        train(cfg(steps=3, out_dir=str(tmp_path)), model_cfg(), synthetic(), tokenizer_hash="aaaa")
    # how often to evaluate or save is not part of the run's maths: it continues
    res = train(cfg(steps=2, eval_interval=1, out_dir=str(tmp_path)), model_cfg(), synthetic(), tokenizer_hash="aaaa")
    assert res.history[-1]["step"] == 2


def test_checkpoints_are_plain_tensors_and_data(tmp_path):
    train(cfg(steps=2, out_dir=str(tmp_path)), model_cfg(), synthetic())
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)  # what any user can do safely
    assert state["step"] == 2 and "tok_embeddings.weight" in state["model"]
    torch.save({"step": 1, "format": "minillama-checkpoint 2"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a minillama checkpoint|corrupted"):
        read_checkpoint(tmp_path / "other.pt")


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch " + str(_Payload.marker),))


def test_a_crafted_pickle_is_refused_and_never_runs(tmp_path):
    _Payload.marker = tmp_path / "pwned"
    torch.save({"model": _Payload(), "step": 1}, tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match="could run code"):
        read_checkpoint(tmp_path / "ckpt.pt")
    assert not _Payload.marker.exists()
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path, fallback=False)
    assert not _Payload.marker.exists()


def test_save_is_atomic(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"step": 1})

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, {"step": 2})
    assert read_checkpoint(tmp_path / "ckpt.pt")["step"] == 1  # the old checkpoint is untouched


def _spawn_two(worker, out: str) -> None:
    """Run ``worker`` on 2 gloo ranks. A rank killed by a signal (gloo's threads have aborted a rank
    at teardown on a loaded machine, once in many runs) gets one fresh try on a new port; an
    exception raised by the training code is never retried."""
    for attempt in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            torch.multiprocessing.spawn(worker, args=(2, port, out), nprocs=2, join=True)
            return
        except torch.multiprocessing.ProcessExitedException:
            if attempt:
                raise
            if Path(out).is_dir():  # the retry starts clean: no half-written run to resume from
                for child in Path(out).iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()


def _ddp_worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    res = train(cfg(steps=4, grad_accum=2), model_cfg(), synthetic())
    if rank == 0:
        Path(out).write_text(json.dumps({"losses": losses(res.history),
                                         "w": res.model.output.weight.flatten()[:50].tolist()}))
    torch.distributed.destroy_process_group()


def test_ddp_two_processes_match_single_process(tmp_path):
    out = tmp_path / "ddp.json"
    _spawn_two(_ddp_worker, str(out))
    ddp = json.loads(out.read_text())
    single = train(cfg(steps=4, grad_accum=2), model_cfg(), synthetic())
    np.testing.assert_allclose(ddp["losses"], losses(single.history), rtol=1e-4)
    np.testing.assert_allclose(ddp["w"], single.model.output.weight.flatten()[:50].tolist(), rtol=1e-3, atol=1e-5)


def _roll_back(run: Path, to: Path) -> None:
    """A copy of ``run`` as if it had stopped at its previous checkpoint."""
    import shutil

    shutil.copytree(run, to)
    os.replace(to / "ckpt.prev.pt", to / "ckpt.pt")


def _fsdp_worker(rank, world, port, root):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    root = Path(root)
    run = dict(steps=4, grad_accum=2, checkpoint_interval=2, parallel="fsdp")
    res = train(cfg(**run, out_dir=str(root / "fsdp")), model_cfg(), synthetic())
    if rank == 0:
        _roll_back(root / "fsdp", root / "fsdp-resumed")
    torch.distributed.barrier()
    resumed = train(cfg(**run, out_dir=str(root / "fsdp-resumed")), model_cfg(), synthetic())  # loads into shards
    if rank == 0:
        (root / "fsdp.json").write_text(json.dumps({
            "losses": losses(res.history), "w": res.model.output.weight.flatten()[:50].tolist(),
            "resumed": losses(resumed.history), "resumed_w": resumed.model.output.weight.flatten()[:50].tolist()}))
    torch.distributed.barrier()  # no rank tears gloo down while the other still talks to it
    torch.distributed.destroy_process_group()


def test_fsdp_two_processes_match_single_process(tmp_path):
    """FSDP2 over 2 gloo ranks trains like one process; its checkpoints are whole (plain tensors
    of full shape), and both a sharded and a single-process run resume from them exactly."""
    _spawn_two(_fsdp_worker, str(tmp_path))
    fsdp = json.loads((tmp_path / "fsdp.json").read_text())
    single = train(cfg(steps=4, grad_accum=2), model_cfg(), synthetic())
    w = single.model.output.weight.flatten()[:50].tolist()
    np.testing.assert_allclose(fsdp["losses"], losses(single.history), rtol=1e-4)
    np.testing.assert_allclose(fsdp["w"], w, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(fsdp["resumed"], losses(single.history), rtol=1e-4)
    np.testing.assert_allclose(fsdp["resumed_w"], w, rtol=1e-3, atol=1e-5)

    state = torch.load(tmp_path / "fsdp" / "ckpt.pt", weights_only=True)
    for name, p in single.model.state_dict().items():
        torch.testing.assert_close(state["model"][name], p, rtol=1e-3, atol=1e-5)
    shapes = sorted(tuple(s["exp_avg"].shape) for s in state["optimizer"]["state"].values())
    assert shapes == sorted(tuple(p.shape) for p in single.model.parameters())

    _roll_back(tmp_path / "fsdp", tmp_path / "one-process")
    resumed = train(cfg(steps=4, grad_accum=2, checkpoint_interval=2, out_dir=str(tmp_path / "one-process")),
                    model_cfg(), synthetic())
    np.testing.assert_allclose(losses(resumed.history), losses(single.history), rtol=1e-4)

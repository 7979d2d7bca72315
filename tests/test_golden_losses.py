"""The quick profile's first training losses, pinned (a recorded curve, as torchtitan keeps).

Any change to the data pipeline, the tokenizer, the model or the optimizer that moves the
numbers fails here, so it is made on purpose: re-record with
``MINILLAMA_PROFILE=quick python tests/test_golden_losses.py --record`` and say why in the commit.
The corpus is the interpreter's standard library, so the curve is tied to the corpus it was
recorded on; with another one (another Python version) the test skips and says so.
"""

import json
import sys
from pathlib import Path

import pytest
import torch

ASSET = Path(__file__).parent / "assets" / "golden_losses_quick.json"
STEPS = 10


def first_losses(data_dir: Path) -> dict:
    """Tokenizer, packed data and the first ``STEPS`` losses of both quick models, from scratch
    (``$MINILLAMA_DATA`` must point at the empty ``data_dir``)."""
    from minillama.data.corpus import get_corpus
    from minillama.profiles import get_profile
    from minillama.training.pretrain import pretrain

    profile = get_profile("quick")
    out = {"corpus": get_corpus(profile).fingerprint(), "python": sys.version.split()[0],
           "torch": torch.__version__}
    torch.set_num_threads(1)
    for fim in (True, False):
        res = pretrain(profile, fim=fim, verbose=False, steps=STEPS, eval_interval=0, checkpoint_interval=0,
                       warmup=2, out_dir=str(data_dir / f"run-{fim}"))
        out["fim" if fim else "l2r"] = [h["loss"] for h in res.history if "loss" in h]
    return out


@pytest.mark.slow
def test_the_first_losses_match_the_recorded_curve(tmp_path, monkeypatch):
    golden = json.loads(ASSET.read_text())
    monkeypatch.setenv("MINILLAMA_DATA", str(tmp_path))
    from minillama.data.corpus import get_corpus
    from minillama.profiles import get_profile

    if get_corpus(get_profile("quick")).fingerprint() != golden["corpus"]:
        pytest.skip(f"the curve was recorded on Python {golden['python']}'s standard library; this "
                    f"interpreter's differs, so its data and losses do too")
    got = first_losses(tmp_path)
    for run in ("fim", "l2r"):
        # a tolerance, not equality: kernels may sum in another order on another CPU
        torch.testing.assert_close(torch.tensor(got[run]), torch.tensor(golden[run]), rtol=1e-4, atol=1e-4,
                                   msg=f"{run}: the first {STEPS} losses moved; re-record if that was meant")


if __name__ == "__main__" and "--record" in sys.argv:
    import tempfile

    import os

    with tempfile.TemporaryDirectory() as d:
        os.environ["MINILLAMA_DATA"] = d
        result = first_losses(Path(d))
    ASSET.parent.mkdir(exist_ok=True)
    ASSET.write_text(json.dumps(result, indent=1) + "\n")
    print(f"recorded {ASSET}: {result}")

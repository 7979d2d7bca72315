"""CLI: ``python -m minillama train`` (also under ``torchrun`` for several GPUs/nodes).

    python -m minillama train                      # the profile's FIM model, resumes if interrupted
    python -m minillama train --no-fim             # the ablation's left-to-right model
    MINILLAMA_PROFILE=quick python -m minillama train --steps 10 --out /tmp/run
    torchrun --nproc_per_node 4 -m minillama train # DDP: same global batch, split over ranks
"""

from __future__ import annotations


def _train(args) -> int:
    from .artifacts import pretrain
    from .profiles import get_profile

    profile = get_profile(args.profile)
    overrides = {k: v for k, v in dict(steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
                                       lr=args.lr, out_dir=args.out, device=args.device,
                                       seed=args.seed).items() if v is not None}
    if args.no_compile:
        overrides["compile"] = False
    result = pretrain(profile, fim=not args.no_fim, **overrides)
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_initialized() else 0
    if dist.is_initialized():
        dist.destroy_process_group()
    if rank == 0:
        last = [h for h in result.history if "val_l2r_loss" in h]
        if last:
            print("final: " + ", ".join(f"{k} {v:.4f}" for k, v in last[-1].items() if k != "step"))
        print(f"run directory: {result.out_dir}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="pretrain the profile's model (FIM by default), resumable")
    p.add_argument("--profile", help="quick | cpu | gpu (default: $MINILLAMA_PROFILE or cpu)")
    p.add_argument("--no-fim", action="store_true", help="left-to-right only (the ablation baseline)")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int, help="sequences per optimizer step (global)")
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--out", help="run directory (default data/artifacts/<profile>/pretrain-*)")
    p.add_argument("--device")
    p.add_argument("--seed", type=int)
    p.add_argument("--no-compile", action="store_true")
    p.set_defaults(func=_train)

"""CLI: ``python -m minillama self-instruct`` runs the self-instruct measurement of notebook 05."""

from __future__ import annotations


def _self_instruct(args) -> int:
    from dataclasses import replace

    from .profiles import get_profile
    from .self_instruct import get_sizes, run_experiment

    profile = get_profile(args.profile)
    sizes = get_sizes(profile)
    overrides = {k: v for k, v in (("n_questions", args.questions), ("n_samples", args.samples),
                                   ("sft_steps", args.steps), ("n_heldout", args.heldout)) if v is not None}
    sizes = replace(sizes, **overrides)
    out = run_experiment(profile, sizes, seed=args.seed, record=not args.no_record)["record"]
    print(f"funnel: {out['funnel']}")
    for name in ("base", "filtered", "unfiltered"):
        s = out["scores"][name]["heldout"]
        print(f"pass@1 {name:<10} {s['pass1']:.3f}  95% CI [{s['ci95'][0]:.3f}, {s['ci95'][1]:.3f}]  "
              f"({s['solved']}/{s['n']} held-out tasks)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("self-instruct", help="self-instruct data, SFT on filtered vs unfiltered data, pass@1")
    p.add_argument("--profile", default=None, help="quick | cpu | gpu (default: $MINILLAMA_PROFILE or cpu)")
    p.add_argument("--questions", type=int, help="questions to write (before dedup)")
    p.add_argument("--samples", type=int, help="solutions sampled per question (the paper: 10)")
    p.add_argument("--steps", type=int, help="fine-tuning steps")
    p.add_argument("--heldout", type=int, help="held-out tasks to score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-record", action="store_true", help="do not write results/summary.json")
    p.set_defaults(func=_self_instruct)

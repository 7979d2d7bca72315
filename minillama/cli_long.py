"""CLI: ``python -m minillama long-context`` runs the long-context study for the profile."""

from __future__ import annotations


def _long_context(args) -> int:
    import json

    from .long_context import format_retrieval_table, run_experiment
    from .profiles import get_profile

    profile = get_profile(args.profile)
    out = run_experiment(profile, retrieval=not args.no_retrieval, cost=not args.no_cost)
    if "retrieval" in out:
        print("\nkey retrieval accuracy (chance 1/90), all lengths and positions:")
        print(format_retrieval_table(out["retrieval"]))
    if "cost" in out:
        print("\nforward cost, batch 1:")
        for row in out["cost"]:
            mem = "n/a" if row.get("peak_mib") is None else f"{row['peak_mib']:.0f} MiB"
            print(f"  T={row['seq_len']:>6}  {row['seconds']:7.3f} s  {row['tokens_per_s']:>9,.0f} tok/s  peak +{mem}")
    if args.json:
        ppl = {k: {str(T): v for T, v in row.items()} for k, row in out["ppl"].items()}
        with open(args.json, "w") as f:
            json.dump({"profile": profile.name, "ppl": ppl, "lengths": out["lengths"]}, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("long-context", help="LCFT (θ 1e4 -> 1e6) vs PI/YaRN: fine-tune, perplexity vs context, "
                                            "key retrieval, cost")
    p.add_argument("--profile", default=None, help="quick|cpu|gpu (default: $MINILLAMA_PROFILE or cpu)")
    p.add_argument("--no-retrieval", action="store_true", help="skip the key-retrieval evaluation")
    p.add_argument("--no-cost", action="store_true", help="skip the forward time/memory measurement")
    p.add_argument("--json", default=None, help="also write the perplexity table to this file")
    p.set_defaults(func=_long_context)

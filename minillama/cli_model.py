"""CLI: model presets, reproduction, checkpoint conversion."""

from __future__ import annotations


def _info(args) -> int:
    from .model import PRESETS, count_parameters, flops_per_token

    print(f"{'preset':<15}{'params':>16}{'dim':>6}{'layers':>7}{'heads':>6}{'kv':>4}{'ffn':>7}{'theta':>10}")
    for name, cfg in PRESETS.items():
        print(f"{name:<15}{count_parameters(cfg):>16,}{cfg.dim:>6}{cfg.n_layers:>7}{cfg.n_heads:>6}"
              f"{cfg.n_kv_heads:>4}{cfg.ffn_dim:>7}{cfg.rope_theta:>10.0e}")
    return 0


def _reproduce(args) -> int:
    from .reproduce import reproduce

    return reproduce(args.out, args.only)


def _convert(args) -> int:
    from .hf import from_pretrained, load_meta, save_pretrained

    model = load_meta(args.src) if args.meta else from_pretrained(args.src)
    save_pretrained(model, args.dst)
    print(f"wrote {args.dst} ({model.num_parameters():,} parameters)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="list the model presets with their sizes")
    p.set_defaults(func=_info)
    p = sub.add_parser("reproduce", help="run every notebook headless and write results/")
    p.add_argument("--out", default="results")
    p.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 03")
    p.set_defaults(func=_reproduce)
    p = sub.add_parser("convert", help="convert a Meta or HF Llama checkpoint to an HF folder via minillama")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--meta", action="store_true", help="src is a Meta params.json + consolidated.*.pth folder")
    p.set_defaults(func=_convert)

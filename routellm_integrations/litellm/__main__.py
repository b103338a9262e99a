"""``python -m routellm_integrations.litellm config``: print the proxy's ``config.yaml``
entry for the plug-in's alias, to paste under ``model_list:``.

    python -m routellm_integrations.litellm config --strong smart --weak fast
    python -m routellm_integrations.litellm config --model gpt-4o=smart --model gpt-4o-mini=fast --fallback gpt-4o-mini

It is :func:`~.config.proxy_deployment` as YAML: the same marker the SDK's
``RouteLLMPlugin.deployment()`` returns, with ``classifier_plugin`` naming the module and
instance the proxy imports. Needs no LiteLLM (only PyYAML); a route that does not fit
is a typed error, printed, exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import RouteLLMError
from .config import DEFAULT_CLASSIFIER_PLUGIN, DEFAULT_MODEL_NAME, proxy_deployment_yaml


def _model(text: str) -> tuple[str, str]:
    key, sep, group = text.partition("=")
    if not sep or not key.strip() or not group.strip():
        raise argparse.ArgumentTypeError(f"--model takes KEY=MODEL_GROUP, got {text!r}")
    return key.strip(), group.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m routellm_integrations.litellm",
                                 description="The LiteLLM routing plug-in's helpers.")
    sub = ap.add_subparsers(dest="command", required=True)
    config = sub.add_parser("config", help="print the config.yaml model_list entry of the routed alias",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    config.add_argument("--strong", help="the strong model group (a pair)")
    config.add_argument("--weak", help="the weak model group (a pair)")
    config.add_argument("--model", action="append", type=_model, metavar="KEY=MODEL_GROUP",
                        help="N models: a route key (the router's name of the model) and its model group; repeat")
    config.add_argument("--model-name", default=DEFAULT_MODEL_NAME, help="the alias users call (%(default)s)")
    config.add_argument("--classifier-plugin", default=DEFAULT_CLASSIFIER_PLUGIN,
                        help="module.instance of the plug-in the proxy imports (%(default)s)")
    config.add_argument("--fallback", help="the tier a request takes when the classifier fails "
                        "(a pair: weak; N models: required)")
    args = ap.parse_args(argv)
    models = dict(args.model) if args.model else None
    if args.model and len(models) != len(args.model):  # type: ignore[arg-type]
        ap.error("--model: a route key given twice")
    try:
        text = proxy_deployment_yaml(strong=args.strong, weak=args.weak, models=models, model_name=args.model_name,
                                     classifier_plugin=args.classifier_plugin, fallback=args.fallback)
    except RouteLLMError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

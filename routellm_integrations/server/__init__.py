"""``routellm serve``: an OpenAI-compatible routing server (FastAPI + uvicorn; the
``server`` extra). Import :func:`create_app` from :mod:`.app`; this package imports no
web framework by itself."""

__all__ = ["create_app", "load_config", "ServerConfig"]


def __getattr__(name: str):  # the web framework loads on first use
    if name == "create_app":
        from .app import create_app

        return create_app
    if name in ("load_config", "ServerConfig"):
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Choose, per build, whether the book re-executes its notebooks.

``_config.yml`` sets ``execute_notebooks: "off"``: the book renders the outputs stored in
the notebooks, which nbval already proves reproducible, so ``make book`` is fast. Setting
``BOOK_EXECUTE`` (``force``, ``cache`` or ``auto``; see myst-nb's ``nb_execution_mode``)
in the environment re-executes them for one build (``make book-execute``) without a
second copy of the configuration.
"""

from __future__ import annotations

import os

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

ENV_VAR = "BOOK_EXECUTE"
MODES = ("off", "force", "cache", "auto", "inline")


def override_execution_mode(app: Sphinx, config: Config) -> None:
    """Replace ``nb_execution_mode`` by the value of ``$BOOK_EXECUTE`` when it is set."""
    mode = os.environ.get(ENV_VAR, "").strip()
    if not mode:
        return
    if mode not in MODES:
        raise ConfigError(
            f"{ENV_VAR}={mode!r} is invalid: use one of {', '.join(MODES)} "
            f"(`make book-execute` sets {ENV_VAR}=force), or unset it to render stored outputs."
        )
    config.nb_execution_mode = mode


def setup(app: Sphinx) -> dict[str, bool]:
    app.connect("config-inited", override_execution_mode)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

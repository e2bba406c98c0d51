"""What the figure modules share: the split colours and the plotly renderer for notebooks and their offline
HTML exports."""

from __future__ import annotations

import plotly.io as pio

SPLIT_COLORS = {"Training": "#4C72B0", "PublicTest": "#DD8452", "PrivateTest": "#55A868"}


def use_offline_plotly() -> None:
    """Render plotly figures for JupyterLab *and* for nbconvert HTML that works with no internet.

    plotly ≥ 6 figures vanish from exported HTML unless plotly.js travels inside the notebook: the "notebook"
    renderer embeds it once; "plotly_mimetype" keeps JupyterLab's native rendering.
    """
    pio.renderers.default = "plotly_mimetype+notebook"

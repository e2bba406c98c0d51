"""Jupyter server settings for this checkout, read when this folder is on JUPYTER_CONFIG_PATH: ``make lab`` starts
JupyterLab that way (Jupyter does not read config files from the current directory).

Saving one of the numbered notebooks in notebooks/ (Ctrl-S, or JupyterLab's autosave every two minutes) writes it
without outputs or execution counts, as it is committed, so working in JupyterLab leaves ``git status`` clean. The
executed copies with their outputs are in reports/ (``fer-workbench run``); to keep an interactive session's
outputs, save the notebook elsewhere (File > Save Notebook As...). Other notebooks are saved as they are.
"""

c = get_config()  # noqa: F821 (Jupyter's config loader provides get_config)
c.ContentsManager.pre_save_hook = "fer_workbench.jupyter_hooks.strip_outputs_on_save"

"""Jupyter server settings for this checkout, read when this folder is on JUPYTER_CONFIG_PATH: ``make lab`` starts
JupyterLab that way (Jupyter reads no config files from the current directory).

Saving one of the numbered notebooks in notebooks/ (Ctrl-S, or JupyterLab's autosave every two minutes) writes it
as it is committed, without outputs or execution counts, so running notebooks in JupyterLab leaves ``git status``
clean. Their executed copies, outputs and all, are what ``fer-workbench run`` writes to reports/; to keep a
session's outputs, save the notebook under another name (File > Save Notebook As..., not ``NN_name.ipynb``) or into
a subfolder: other notebooks are saved as they are. See fer_workbench/jupyter_hooks.py and tests/test_jupyter_hooks.py.
"""

c = get_config()  # noqa: F821 (Jupyter's config loader provides get_config)
c.ContentsManager.pre_save_hook = "fer_workbench.jupyter_hooks.strip_outputs_on_save"

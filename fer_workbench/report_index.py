"""The run's index page, index.html: a results summary, every notebook, the run's metadata.

:func:`write_index` writes run.json and index.html together (rewritten after every notebook, so a killed run still
leaves both). The page is rendered from ``templates/index.html.j2`` (Jinja, autoescaped) and is self-contained:
inline CSS, thumbnails as data URIs, no scripts.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from fer_workbench.files import atomic_write_text
from fer_workbench.run_document import FAILED, PipelineResult

HEADLINE_KEY = "headline"  # a results document's list of short sentences for the index
_SUMMARY_ITEMS = 8  # top-level values shown for a results document without a headline


def _thumbnail_uris(result: PipelineResult) -> dict[str, str]:
    """Thumbnails as data URIs, so index.html stays one self-contained file."""
    import base64

    uris = {}
    for record in result.records:
        if record.thumbnail is not None and record.thumbnail.is_file():
            uris[record.stem] = "data:image/png;base64," + base64.b64encode(record.thumbnail.read_bytes()).decode()
    return uris


def write_index(result: PipelineResult) -> None:
    """Write ``result``'s run.json and index.html (atomically), as the run stands now."""
    document = result.to_dict()
    atomic_write_text(result.run_json, json.dumps(document, indent=2, default=str) + "\n")
    atomic_write_text(result.index_path, render_index(document, thumbnails=_thumbnail_uris(result)))


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def summary_lines(results: dict) -> list[str]:
    """What index.html shows of one notebook's results: its ``headline`` sentences, else its top-level numbers
    and strings as ``key: value``."""
    headline = results.get(HEADLINE_KEY)
    if isinstance(headline, list) and headline:
        return [str(line) for line in headline]
    scalars = [(k, v) for k, v in results.items() if isinstance(v, (str, int, float, bool)) and v is not None]
    return [f"{k}: {_format_value(v)}" for k, v in scalars[:_SUMMARY_ITEMS]]


def _template_environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader("fer_workbench", "templates"), autoescape=select_autoescape(["html", "j2"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_index(document: dict, thumbnails: dict[str, str] | None = None) -> str:
    """The run's index page from ``templates/index.html.j2``: a results summary (one card per notebook that
    recorded results, with its thumbnail), the notebooks, the run metadata and parameters. Self-contained HTML
    (inline CSS and images, no scripts). ``thumbnails`` maps notebook stems to image URIs."""
    meta = document["metadata"]
    records = document["notebooks"]
    results = document.get("results") or {}
    thumbnails = thumbnails or {}
    statuses = {r["status"] for r in records}
    if document["ok"]:
        banner = ("ok", "All notebooks ran successfully.")
    elif FAILED in statuses:
        banner = ("failed", document["failure"])
    else:
        banner = ("", "Run in progress or interrupted.")

    packages = meta.get("packages") or {}
    kernel = meta.get("kernel") or {}
    meta_rows = [
        ("Created", meta.get("created")),
        ("Git commit", meta.get("git_commit") or "unknown (not a git checkout)"),
        ("Profile", meta.get("profile")),
        ("Seed", meta.get("seed")),
        ("Data", meta.get("data_path")),
        ("Data checksum (sha256)", meta.get("data_checksum")),
        ("Python", f'{meta.get("python", "")} — {meta.get("platform", "")}'),
        ("Kernel", f'{kernel.get("name", "")} ({kernel.get("python") or "?"})'),
        ("Packages", ", ".join(f"{name} {version}" for name, version in packages.items() if version) or None),
    ]
    notebooks = []
    for number, r in enumerate(records, 1):
        where = ""
        if r["status"] == FAILED and r["failed_cell"] is not None:
            where = f'cell {r["failed_cell"]}'
            if r["failed_execution_count"] is not None:
                where += f' (In [{r["failed_execution_count"]}])'
            where += ": "
        notebooks.append({
            "number": number, "name": r["name"], "stem": Path(r["name"]).stem,
            "status": r["status"] + (f' (earlier run, {r["earlier"]})' if r.get("earlier") else ""),
            "css": r["status"].replace(" ", "-"),
            "seconds": "" if r["seconds"] is None else f'{r["seconds"]:.1f} s',
            "error": f'{where}{r["error"]}' if r["status"] == FAILED else None,
            "html": quote(r["html"]) if r["html"] else None,
            "executed": quote(r["executed"]) if r["executed"] else None,
        })
    cards = [{**nb, "lines": summary_lines(results[nb["stem"]]), "thumbnail": thumbnails.get(nb["stem"])}
             for nb in notebooks if nb["stem"] in results]
    parameters = [(k, json.dumps(v, default=str)) for k, v in (meta.get("parameters") or {}).items()]
    return _template_environment().get_template("index.html.j2").render(
        title=f'FER Workbench run — {meta.get("created", "")}', created=meta.get("created"), banner=banner,
        cards=cards, notebooks=notebooks, meta_rows=meta_rows, parameters=parameters)



__all__ = ["HEADLINE_KEY", "render_index", "summary_lines", "write_index"]

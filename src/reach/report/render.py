"""Render report/report.qmd to one self-contained HTML file: `quarto render` when a quarto binary is on PATH,
otherwise the same .qmd read by jupytext (its ```{python} chunks in R Markdown form), executed by nbclient and
exported by nbconvert with images embedded. The notebook learns the renderer and the results directory from
REACH_REPORT_RENDERER and REACH_ROOT, and prints the renderer at the top of the report."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

QUARTO_NOTE = "quarto render"
FALLBACK_NOTE = "jupytext + nbconvert (no quarto binary on PATH: DESIGN §5 fallback)"
ERROR_MARKERS = ("Traceback (most recent call last)", "application/vnd.jupyter.error", "jp-OutputArea-error",
                 "output_error")


def find_quarto() -> str | None:
    return shutil.which("quarto")


def front_matter(text: str) -> dict:
    """The YAML header of a .qmd (empty when there is none)."""
    m = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, flags=re.S)
    return yaml.safe_load(m.group(1)) or {} if m else {}


def qmd_to_notebook(qmd: Path):
    """The .qmd as a notebook: jupytext's R Markdown reader takes Quarto's ```{python} chunks (DESIGN §7); the YAML
    header becomes the title cell, and `#|` chunk options stay as comments."""
    import jupytext
    import nbformat

    text = Path(qmd).read_text()
    header = front_matter(text)
    nb = jupytext.reads(text, fmt="Rmd")
    nb.cells = [c for c in nb.cells if not (c.cell_type == "raw" and c.source.lstrip().startswith("---"))]
    title = header.get("title", Path(qmd).stem)
    intro = f"# {title}\n"
    if header.get("subtitle"):
        intro += f"\n*{header['subtitle']}*\n"
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(intro))
    nb.metadata["title"] = title
    nb.metadata["kernelspec"] = {"name": "reach-report", "display_name": "reach report (Python)", "language": "python"}
    if not any(c.cell_type == "code" for c in nb.cells):
        raise ValueError(f"{qmd}: jupytext found no ```{{python}} chunks")
    return nb


def _kernelspec_dir(base: Path) -> Path:
    """A kernelspec that runs this interpreter (the one with `reach` installed), whatever `python` is on PATH."""
    spec = base / "kernels" / "reach-report"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "reach report (Python)", "language": "python"}))
    return base


def render_nbconvert(qmd: Path, html: Path, env: dict[str, str], timeout: int = 600) -> None:
    """Execute the .qmd's chunks (a raising cell stops the render: allow_errors=False) and write HTML without the
    code, images embedded as base64."""
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = qmd_to_notebook(qmd)
    with tempfile.TemporaryDirectory() as tmp:
        old = dict(os.environ)
        os.environ.update(env)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            [str(_kernelspec_dir(Path(tmp))), *filter(None, [old.get("JUPYTER_PATH")])])
        os.environ.setdefault("MPLBACKEND", "Agg")
        try:
            NotebookClient(nb, timeout=timeout, kernel_name="reach-report", allow_errors=False,
                           resources={"metadata": {"path": str(Path(qmd).parent)}}).execute()
        finally:
            os.environ.clear()
            os.environ.update(old)
    exporter = HTMLExporter(embed_images=True, exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": nb.metadata["title"]}})
    Path(html).write_text(body)


def render_quarto(quarto: str, qmd: Path, html: Path, env: dict[str, str], timeout: int = 1800) -> None:
    """`quarto render` with this interpreter as its Jupyter python; _quarto.yml asks for embed-resources."""
    run_env = {**os.environ, **env, "QUARTO_PYTHON": sys.executable}
    out = subprocess.run([quarto, "render", str(qmd), "--to", "html", "--output", html.name],
                         cwd=qmd.parent, env=run_env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"quarto render {qmd} failed ({out.returncode}):\n{out.stderr[-4000:]}")
    shutil.move(str(qmd.parent / html.name), html)


def render_report(qmd: Path, html: Path, root: Path, *, renderer: str = "auto", env: dict[str, str] | None = None,
                  timeout: int = 600) -> str:
    """Render `qmd` (with its _quarto.yml) against the results under `root` into `html`. The sources are copied
    to a scratch directory so that neither renderer writes beside the committed report. Returns the renderer."""
    qmd, html, root = Path(qmd).resolve(), Path(html).resolve(), Path(root).resolve()
    quarto = find_quarto() if renderer in ("auto", "quarto") else None
    if renderer == "quarto" and quarto is None:
        raise FileNotFoundError("renderer quarto requested but no quarto binary is on PATH")
    if renderer not in ("auto", "quarto", "nbconvert"):
        raise ValueError(f"unknown renderer {renderer!r} (auto, quarto or nbconvert)")
    used = QUARTO_NOTE if quarto else FALLBACK_NOTE
    html.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**(env or {}), "REACH_ROOT": str(root), "REACH_REPORT_RENDERER": used}
    with tempfile.TemporaryDirectory(prefix="reach-report-") as tmp:
        work = Path(tmp)
        for f in qmd.parent.iterdir():
            if f.is_file():
                shutil.copy(f, work / f.name)
        if quarto:
            render_quarto(quarto, work / qmd.name, html, full_env, timeout=timeout)
        else:
            render_nbconvert(work / qmd.name, html, full_env, timeout=timeout)
    return used


def html_errors(text: str) -> list[str]:
    """Markers of a cell that raised, found in rendered HTML (empty when none)."""
    return [m for m in ERROR_MARKERS if m in text]


def external_images(text: str) -> list[str]:
    """<img> sources that are not embedded data URIs (a self-contained report has none)."""
    return [s for s in re.findall(r"<img[^>]*\ssrc=[\"']([^\"']+)[\"']", text) if not s.startswith("data:")]

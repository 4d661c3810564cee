"""The rendered report (issue 9): display helpers against hand-computed values, the .qmd through jupytext, the
renderer choice (a stand-in quarto binary), explicit degradation on an empty run, a raising cell failing the render,
and the tiny finished workflow's report opened in headless Chromium (every image loads; screenshot saved)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reach.report import tables as rt
from reach.report.render import (FALLBACK_NOTE, QUARTO_NOTE, external_images, html_errors, qmd_to_notebook,
                                 render_report)

REPO = Path(__file__).resolve().parents[1]
QMD = REPO / "report" / "report.qmd"
SECTIONS = ["Data (Tables 1 and 6)", "Representation: VS-VAE", "Impression growth model", "The instrument",
            "Average follower elasticity", "By engagement tactic", "Campaigns by influencer tier",
            "The naive correlational curve", "Optimal influencer size", "Category (p, q) estimates", "WMAPE",
            "Estimator study", "Promotion policies"]


def sections_that_fell_back(text: str) -> list[str]:
    """The headings (h1-h3) of a rendered report whose section shows the explicit 'not enough data' fallback
    (its text or a reach-missing note) instead of its tables and figures."""
    body = text.split("<body", 1)[-1]
    parts = re.split(r"<h[1-3]\b[^>]*>(.*?)</h[1-3]>", body, flags=re.S)
    fell = []
    for title, content in zip(parts[1::2], parts[2::2]):
        if rt.NOT_ENOUGH in content or "reach-missing" in content:
            fell.append(re.sub(r"<[^>]+>", "", title).replace("\u00b6", "").strip())
    return fell


def test_substitute_note_names_the_substitute_and_the_paper_model():
    manifest = {"extractor": {"name": "efficientnet-lite0", "source": "substitute"}, "paper_extractor": "VGG-19",
                "sentiment": {"name": None, "source": "empty: no models.sentiment_onnx configured"}}
    note = rt.substitute_note(manifest)
    assert note.startswith("Substitute model ran: efficientnet-lite0 in place of VGG-19")
    assert "sentiment" in note and "empty" in note
    assert rt.substitute_note({"extractor": {"name": "VGG-19 (local .h5)", "source": "paper"}}) is None
    table = rt.feature_models({"image": manifest, "post": {"extractor": {"name": "post", "source": "paper formulas"}}})
    assert table.set_index("modality").loc["image", "note"] == note
    assert table.set_index("modality").loc["post", "note"] == ""


def test_table1_and_table6_match_numpy_and_sit_beside_the_paper():
    rng = np.random.default_rng(0)
    videos = pd.DataFrame({"followers": rng.integers(1, 10**6, 101), "impressions": rng.integers(1, 10**7, 101),
                           "num_hashtags": rng.integers(0, 10, 101), "has_fyp": rng.random(101) < 0.5})
    t1 = rt.table1(videos)
    f = videos["followers"].to_numpy(float)
    assert t1.loc["Followers", "Mean"] == pytest.approx(f.mean())
    assert t1.loc["Followers", "Std. Dev."] == pytest.approx(f.std(ddof=1))
    assert t1.loc["Followers", "Median"] == np.median(f)
    assert t1.loc["Impressions", "Median (paper)"] == 4_444_500
    t6 = rt.table6(videos)
    assert list(t6.index) == ["Num Hashtags", "Has FYP"]
    assert t6.loc["Has FYP", "Mean"] == pytest.approx(videos["has_fyp"].mean())
    assert t6.loc["Num Hashtags", "Mean (paper)"] == 6.662


def test_campaign_tiers_beside_the_truth_with_their_error():
    tiers = ["nano", "micro"]
    est = pd.DataFrame({"hashtag": ["A", "B", "C"], "shape": ["linear", "concave", "linear"],
                        "nano": [0.2, 0.5, 0.1], "micro": [0.3, 0.1, 0.1]})
    truth = pd.DataFrame({"hashtag": ["B", "A"], "campaign_type": ["concave", "s_shaped"],
                          "nano": [0.4, 0.25], "micro": [0.2, 0.3]})
    table = rt.campaign_tiers_vs_truth(est, truth, tiers).set_index("campaign")
    assert list(table.index) == ["#A", "#B"]                                # C has no truth: left out
    assert table.loc["#A", "mean |error|"] == pytest.approx((0.05 + 0.0) / 2)
    assert table.loc["#B", "mean |error|"] == pytest.approx((0.1 + 0.1) / 2)
    assert table.loc["#A", "true shape"] == "s_shaped" and table.loc["#A", "nano (true)"] == 0.25


def test_fallback_notes_for_stan_backend_scale_and_truth_verdicts():
    notes = rt.growth_notes({"backend": "pystan", "method": "nuts", "scale": "subsample of at most 40 videos"})
    assert any("pystan" in n for n in notes) and any("Reduced scale" in n for n in notes)
    assert rt.growth_notes({"backend": "cmdstanpy", "method": "nuts", "scale": "all videos"}) == []
    assert "reduced scale" in rt.corpus_note(5267, True) and "reduced" not in rt.corpus_note(600_000, False)
    sized = rt.corpus_note(7650, True, pd.Series({"A": 1012, "B": 1310}))
    assert "2 sponsored campaign(s) of 1,012-1,310 videos each" in sized and "1,500-2,000" in sized
    assert any("x 0.25" in n for n in rt.vsvae_notes({"config": {"width_scale": 0.25}, "parameters": 10}))
    checks = rt.truth_check(pd.DataFrame({"metric": ["a", "b", "c"], "value": [1, 2, 3],
                                          "passed": [True, False, None]}))
    assert checks["passed"].tolist() == ["pass", "FAIL", "reported"]
    rec = rt.recovery_table({"true_gamma": 0.983, "by_model_method": {"P-BDM D-OLS": {"gamma": 0.98,
                                                                                      "mean_error": 0.01}}})
    assert rec.loc[0, "gamma error"] == pytest.approx(-0.003)
    shown = rt.fmt(pd.DataFrame({"x": [1234567.0, 0.5, float("nan")], "video_id": [6818860574913336912, 1, 2]}))
    assert shown["x"].tolist() == ["1,234,567", "0.5", ""] and shown["video_id"][0] == "6818860574913336912"


def test_qmd_reads_as_a_notebook_of_valid_python():
    nb = qmd_to_notebook(QMD)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 10
    for cell in code:
        compile(cell.source, "<report chunk>", "exec")
    assert nb.cells[0].source.startswith("# reach")
    assert not any(c.cell_type == "raw" for c in nb.cells)


def test_an_empty_run_degrades_with_explicit_messages(tmp_path):
    html = tmp_path / "report.html"
    used = render_report(QMD, html, tmp_path / "empty", renderer="nbconvert", env={"REACH_SYNTHETIC": "1"})
    text = html.read_text()
    assert used == FALLBACK_NOTE and f"Rendered by: {used}" in text
    assert html_errors(text) == [] and external_images(text) == []
    assert text.count(rt.NOT_ENOUGH) >= len(SECTIONS)
    for section in SECTIONS:
        assert section in text
    fell = sections_that_fell_back(text)                      # the detector the tiny-run test relies on
    for section in SECTIONS:
        assert any(title.startswith(section) for title in fell), (section, fell)


def test_a_raising_cell_fails_the_render(tmp_path):
    (tmp_path / "src").mkdir()
    qmd = tmp_path / "src" / "bad.qmd"
    qmd.write_text('---\ntitle: bad\n---\n\n```{python}\nraise ValueError("boom in a report cell")\n```\n')
    with pytest.raises(Exception, match="boom in a report cell"):
        render_report(qmd, tmp_path / "bad.html", tmp_path, renderer="nbconvert")
    assert not (tmp_path / "bad.html").exists()


def test_quarto_is_used_when_a_binary_is_on_path(tmp_path, monkeypatch):
    """A stand-in `quarto` records its arguments and environment and writes the HTML as quarto would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "quarto"
    fake.write_text('#!/bin/sh\n# args: render FILE --to html --output NAME\n'
                    'echo "<html>$REACH_REPORT_RENDERER|$REACH_ROOT|$QUARTO_PYTHON|$1|$4|$(ls _quarto.yml)</html>" > "$6"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    html = tmp_path / "out" / "report.html"
    used = render_report(QMD, html, tmp_path)
    assert used == QUARTO_NOTE
    renderer, root, python, verb, fmt, yml = html.read_text().strip()[6:-7].split("|")
    assert (renderer, root, verb, fmt, yml) == (QUARTO_NOTE, str(tmp_path.resolve()), "render", "html", "_quarto.yml")
    assert Path(python).exists()
    assert not (REPO / "report" / "report.html").exists()          # rendered in a scratch copy, not beside the source


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = imgs.map(function (i) { return {w: i.naturalWidth, h: i.naturalHeight, complete: i.complete}; });
  var pre = document.createElement('pre'); pre.id = 'reach-img-check';
  pre.textContent = 'REACH_IMAGES=' + JSON.stringify(out) + '=END';
  document.body.appendChild(pre);
});
</script>"""


@pytest.mark.workflow
def test_tiny_run_report_opens_in_headless_chromium(tiny_run, tmp_path):
    assert tiny_run.returncode == 0, tiny_run.log_tail
    assert tiny_run.report.exists(), "the tiny run wrote no results/report/report.html"
    text = tiny_run.report.read_text()
    assert html_errors(text) == [], "a report cell raised"
    assert external_images(text) == [], "the report links images instead of embedding them"
    assert f"Rendered by: {FALLBACK_NOTE if not shutil.which('quarto') else QUARTO_NOTE}" in text
    for section in SECTIONS:
        assert section in text
    # a full tiny run has the inputs of every section: none may fall back to "Not enough data"
    assert sections_that_fell_back(text) == [], "sections without their results in a full tiny run"
    assert rt.NOT_ENOUGH not in text
    assert "Substitute model ran" in text                    # the packaged extractors ran in CI
    n_images = len(re.findall(r"<img\b", text))
    assert n_images >= 10
    log = tiny_run.dir / "results" / "logs" / "render_report.log"
    assert "rendered" in log.read_text()

    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium; `make tools` does it as root): "
                    "the HTML checks above passed, the browser checks did not run")
    page = tmp_path / "report_check.html"
    page.write_text(text.replace("</body>", CHECK_SCRIPT + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--virtual-time-budget=20000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="reach-img-check">REACH_IMAGES=(.*?)=END</pre>', dom.stdout, flags=re.S)
    assert found, f"chromium printed no image check: {dom.stderr[-2000:]}"
    images = json.loads(found.group(1))
    assert len(images) == n_images
    broken = [k for k, im in enumerate(images) if not (im["complete"] and im["w"] > 0 and im["h"] > 0)]
    assert broken == [], f"images that did not load: {broken}"
    shot = tmp_path / "report.png"
    subprocess.run([browser, *flags, "--window-size=1280,2400", "--hide-scrollbars", f"--screenshot={shot}",
                    tiny_run.report.as_uri()], capture_output=True, text=True, timeout=180)
    assert shot.exists() and shot.stat().st_size > 10_000


def test_img_html_embeds_the_png_bytes(tmp_path):
    import base64

    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(40)))
    tag = rt.img_html(png, 'Figure "6"', 300)
    src = re.search(r'src="data:image/png;base64,([^"]+)"', tag).group(1)
    assert base64.b64decode(src) == png.read_bytes()
    assert 'alt="Figure &quot;6&quot;"' in tag and external_images(tag) == []

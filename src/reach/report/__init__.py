"""The rendered report (issue 9): helpers that load upstream tables and build display tables and notes (tables.py),
and the renderer (render.py: `quarto render` when a quarto binary exists, else jupytext + nbconvert)."""

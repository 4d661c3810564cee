"""reach: who should post a short video, and how a platform should promote it (two papers, reproduced)."""

__version__ = "0.1.0"

"""Impression growth (Web Appendix G): the Stage-1 Bayesian log-growth model (log_growth.stan, Eqs. 17-23) and
Stage-2 prediction of its residuals from the video representation r (Eqs. 24-26)."""

"""Causal stage of paper 1: Deep IV, the IV validity test, FEI and influencer selection.

deepiv: Deep IV (Eqs. 1-5, Web Appendix C) — DeepIVConfig, fit_deepiv, fit_ensemble, DeepIVModel.
validity: first-stage strength and the validity check of Eq. 7 — first_stage_strength, iv_validity.
demand: the demand simulation of Hartford et al. (2017), an external check with a known truth.
"""

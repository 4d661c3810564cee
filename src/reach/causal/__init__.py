"""Causal stage of paper 1: the estimators of h(log followers, x), the IV validity test, FEI and influencer selection.

estimator: the protocol both estimators follow (make_config, fit_estimator, load_model; predict, predict_grid, save).
deepiv: Deep IV (Eqs. 1-5, Web Appendix C) — DeepIVConfig, fit_deepiv, fit_ensemble, fit_direct, DeepIVModel.
control_function: control-function IV, series (Newey, Powell & Vella 1999) — ControlFunctionConfig, fit_control_function.
training / response: pieces both share (input checks, scaling, early stopping, splits; the response networks).
validity: first-stage strength and the validity check of Eq. 7 — first_stage_strength, iv_validity.
demand, iv_designs: simulated designs with a known truth (Hartford et al. 2017; DeepGMM; three groups).
fei, truth, selection, figures, design: FEI curves and tables, truth comparisons, Section 4.4, plots, Eq. 6's arrays.
"""

"""Part B, paper 2 Sections 3, 5, 6.2: P-BDM / BDM dynamics, the OLS, D-OLS, MLE, D-MLE and BDM-OLS estimators,
category calibration with time decay, and evaluation (WMAPE, tests)."""

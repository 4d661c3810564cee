"""Causal stage of paper 1: Deep IV, the IV validity test, FEI and influencer selection."""

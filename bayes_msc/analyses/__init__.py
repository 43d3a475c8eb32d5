"""The analyses built on a fit: sensitivity, calibration (SBC), simulation studies, model
comparison, dose-response, decision-by-provenance and the non-randomised bias model."""

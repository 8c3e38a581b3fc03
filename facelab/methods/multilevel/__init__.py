"""Multi-level face model with learned correctives (Tewari et al., CVPR 2018, "over 250 Hz")."""

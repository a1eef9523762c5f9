"""Export of trained FSVEs to NIR, fixed-point simulation and Lava (issues 6-7)."""

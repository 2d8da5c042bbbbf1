"""uvhmr: a reproducible DAG for DMP -> IK -> UVI 3D human mesh recovery (Wang, Yang, Fowlkes 2022)."""
__version__ = "0.1.0"

"""Stage outputs cached for the next stages: DMP's (dmp.py) and IK's, in UV space."""

"""Body models behind one interface: Anny (default, free) and SMPL (your files). See model.py."""

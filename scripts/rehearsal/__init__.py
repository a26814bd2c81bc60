"""Boot rehearsal: both nodes' real boot artifacts, run at once on this machine (see rehearse.py)."""

"""Findings: a trace's result as the caller gets it, built once above both the tracers and the
traffic: the tracer's drops with the firewall rule that made each (``rules.py``) and the
headers of what netlab sent (``sent.py``); ``trace.py`` runs a trace from start to result."""

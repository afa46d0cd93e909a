"""pytest integration (registered via ``pytest11``): fixtures that give a test a live lab,
traffic and traces, the drop assertions, and the run's report. Expectations and reports
themselves live in ``netlab.expect``; tests import all of it from ``netlab.testing``."""

"""pytest integration: fixtures that give a test a live lab (registered via ``pytest11``)."""

"""The command line; thin over the package."""

"""Creative corpora that install as Python packages, read as plain files."""

"""The mutation suite: semantic mutants of pgbook that the unit tests and the chapters must kill.

``mutation.mutants`` lists the mutants, ``mutation.run`` applies each one to a copy of the tree and
runs the unit tests and the chapters against it (``python -m mutation --help``),
``mutation.report`` writes the Markdown report, and ``mutation._probe`` is the pytest plugin every
run loads to prove that the mutated copy, not the editable install, is what gets imported.

This module imports nothing: the plugin is loaded as ``-p mutation._probe`` inside each copy.
"""

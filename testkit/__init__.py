"""What the tests and the benchmark share: real processes (Orthanc, Chromium, DCMTK) and test data.

A top-level package rather than ``tests/support`` so the benchmark (``archive_tools.bench``)
can use it without importing the test suite.
"""

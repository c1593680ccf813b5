"""Thin layers between Orthanc's SDK and our pure modules. The SDK module is passed in."""

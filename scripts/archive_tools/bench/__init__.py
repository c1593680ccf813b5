"""``scripts/bench``: our archive against vanilla Orthanc, side by side in the same run.

REQUIREMENTS M19 asks for the first image archived in at most 0.2 s, 500 images/s and 128 MB/s
sustained; M13 for a first screen under 1 s. This machine is small and shared, so every figure
is measured on two servers started together and exercised alternately (A/B, then B/A): our
archive as shipped (``config/``, every default feature of the plugin on) and a *vanilla* Orthanc
(the same binary, DICOMweb and GDCM plugins and storage settings, no Python plugin). Results are
medians, reported with the ratio ours/vanilla and the requirement beside them. Our archive is
also measured against itself: through its door against its Orthanc direct (issue 6), and with
security on against a second archive with security off (issue 8). Security is on as shipped,
so every request to a door of ours carries a credential, as a real client's does.

Layout: :mod:`stats` and :mod:`results` are pure (percentiles, ratios, verdicts, tables, the JSON
document and its schema); :mod:`data` makes and caches the synthetic instances; :mod:`servers`
starts both Orthancs; :mod:`worker` is the client process (pynetdicom, STOW-RS, HTTP GET) that
:mod:`fleet` starts N at a time; :mod:`ingest`, :mod:`dicomweb` and :mod:`viewer` are the
scenarios; :mod:`runner` alternates them between the servers and rechecks suspect ratios;
:mod:`profiling` attaches py-spy; :mod:`machine` describes the machine; :mod:`cli` is the command.
"""

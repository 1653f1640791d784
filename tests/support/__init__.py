"""Helpers shared by the test suite, one package (``pythonpath = ["tests"]`` in
pyproject.toml makes it importable from every test as ``support``).

Modules: ``security_inputs``/``security_lifecycle`` (scenarios run against every store and
adapter), ``record_contract`` (the token-record contract), ``storage`` (core store tests),
``flows`` (driving the core flow generators), ``manager`` (token managers over the
emulator), ``keys`` (test credentials and keys), ``cli`` (driving ``sfoauth``), ``docs``
(the docs' tested blocks), ``emulator`` (emulator request helpers),
``fastapi``, ``django_testkit``/``django_flow`` (adapter set-ups and browser flows),
``browser`` (Playwright), ``journeys`` (real-process journeys), ``examples`` (example apps).
Child processes that import them need ``tests/`` on their ``PYTHONPATH``.
"""

"""The reference upstream on 127.0.0.1 (refserver.py) as the fixture `ref` for every test in this folder."""

from refserver import ref as ref  # a re-export: pytest finds fixtures in conftest

"""Makes torch_xla unimportable in a Python process, as on a platform it has no wheels for (it
publishes them for Linux x86-64 only): put this folder first on PYTHONPATH. A module set to None in
sys.modules fails to import and is not found by importlib.util.find_spec, which is how xlalab
decides whether torch_xla is installed. tests/test_platforms.py runs stages and the suite so."""

import sys

sys.modules["torch_xla"] = None

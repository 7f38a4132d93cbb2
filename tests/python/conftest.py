import os
import sys
from pathlib import Path

# scripts/test-python.sh installs the wheel into a fresh virtualenv and sets
# PWCACHE_TEST_INSTALLED=1: `import pwcache` must then find the installed package. Run by hand
# (`python -m pytest tests/python` with the library built), the package is imported from the
# repository instead, and the library found through the build tree or $PWCACHE_LIB.
if os.environ.get("PWCACHE_TEST_INSTALLED") != "1":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

import sys
from pathlib import Path

# The package is pure Python: import it from the repository without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

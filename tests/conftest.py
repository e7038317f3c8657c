import sys
from pathlib import Path

# Test helpers (exact_moments, ...) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))

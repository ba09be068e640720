"""Shared by the exporter tests: where the repository, the exporter and the build are."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPORT_DIR = os.path.join(ROOT, "tools", "export")
EXPORT_PY = os.path.join(EXPORT_DIR, "export.py")
BUILD_DIR = os.environ.get("MIRAGE_BUILD_DIR") or os.path.join(ROOT, "build")

if EXPORT_DIR not in sys.path:
    sys.path.insert(0, EXPORT_DIR)

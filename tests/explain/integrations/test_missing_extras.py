"""`import explain` never imports the integrations; a missing extra names the pip line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from explain.errors import MissingExtraError
from explain.integrations._common import require


def test_import_explain_does_not_import_integrations_or_their_frameworks():
    # Arrange
    code = ("import sys, explain; explain.attribute; "
            "print(sorted(m for m in ('lightning', 'transformers', 'explain.integrations') "
            "if m in sys.modules))")
    # Act
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    # Assert
    assert out == "[]"


def test_a_missing_extra_raises_missing_extra_error_with_the_pip_line():
    # Act / Assert
    with pytest.raises(MissingExtraError) as err:
        require("no_such_framework_xyz", "lightning", "explain.integrations.lightning")
    assert str(err.value) == (
        "explain.integrations.lightning needs the 'no_such_framework_xyz' package, which is not "
        "installed. Install it with `pip install 'deepscope[lightning]'`.")


def test_importing_an_integration_without_its_framework_raises_missing_extra_error():
    # Arrange: hide lightning from the import system in a fresh interpreter
    code = ("import sys; sys.modules['lightning'] = None; sys.modules['lightning.pytorch'] = None\n"
            "try:\n    import explain.integrations.lightning\n"
            "except ImportError as e:\n    print(type(e).__name__, e)")
    # Act
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    # Assert
    assert out.startswith("MissingExtraError explain.integrations.lightning needs the "
                          "'lightning.pytorch' package")
    assert out.endswith("`pip install 'deepscope[lightning]'`.")

"""Code shared by several functions (imported as ``from ..shared_code import greeting``)."""

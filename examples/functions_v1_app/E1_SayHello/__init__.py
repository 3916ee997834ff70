"""Activity: a greeting (the helper lives in ../shared_code)."""

from ..shared_code.greeting import greet


def main(name: str) -> str:
    return greet(name)

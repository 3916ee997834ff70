"""A helper the activities share, to show imports across function folders."""


def greet(name: str) -> str:
    return f"Hello {name}!"

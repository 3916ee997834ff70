"""Activity: the work items 1..count."""


def main(count: int) -> list:
    return list(range(1, int(count) + 1))

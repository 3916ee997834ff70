def main(docs) -> None:
    pass

import azure.functions as func


def main(msg: str, source: str, target: func.Out[str], context: func.Context) -> None:
    if msg == "fail":
        raise RuntimeError("this message always fails")
    target.set(f"{context.function_name}: {(source or '').upper()}")

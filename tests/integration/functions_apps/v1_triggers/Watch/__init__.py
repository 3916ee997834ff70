import json

import azure.functions as func


def main(blob: func.InputStream) -> str:
    data = blob.read()
    if data == b"bad":
        raise ValueError(f"{blob.name} is bad")
    return json.dumps({"name": blob.name, "length": blob.length, "data": data.decode()})

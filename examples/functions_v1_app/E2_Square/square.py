"""Activity (async, with a custom scriptFile and entryPoint): one square."""

import logging

import azure.functions as func


async def square(value: int, context: func.Context) -> int:
    logging.debug("%s (%s) squares %s", context.function_name, context.invocation_id, value)
    return int(value) * int(value)
